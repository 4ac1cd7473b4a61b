package main

import "context"

func runReplay(ctx context.Context, e *benchEnv, args []string) error  { return nil }
func runGetRepo(ctx context.Context, e *benchEnv, args []string) error { return nil }
func runImport(ctx context.Context, e *benchEnv, args []string) error  { return nil }
func runRSS(ctx context.Context, e *benchEnv, args []string) error     { return nil }
