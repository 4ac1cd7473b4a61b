package loadgen

import (
	"os"
	"testing"
)

var testDirs []string

func osMkdirTemp() (string, error) {
	d, err := os.MkdirTemp("", "loadgen-test-")
	if err == nil {
		testDirs = append(testDirs, d)
	}
	return d, err
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, d := range testDirs {
		os.RemoveAll(d)
	}
	os.Exit(code)
}
