package lexcheck

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/bluesky-social/indigo/atproto/syntax"
)

// ErrSchema is the class of errors about the lexicons themselves: a file
// that is missing or malformed, a ref to no definition, a type or format
// this package does not know. They are problems of the test setup, not of
// the body checked.
var ErrSchema = errors.New("lexicon schema")

// Schema is one lexicon type definition, or a nested type inside one, with
// the fields this package reads.
type Schema struct {
	Type         string             `json:"type"`
	Ref          string             `json:"ref"`
	Refs         []string           `json:"refs"`
	Closed       bool               `json:"closed"`
	Required     []string           `json:"required"`
	Nullable     []string           `json:"nullable"`
	Properties   map[string]*Schema `json:"properties"`
	Items        *Schema            `json:"items"`
	Format       string             `json:"format"`
	MinLength    *int64             `json:"minLength"`
	MaxLength    *int64             `json:"maxLength"`
	MinGraphemes *int64             `json:"minGraphemes"`
	MaxGraphemes *int64             `json:"maxGraphemes"`
	Minimum      *int64             `json:"minimum"`
	Maximum      *int64             `json:"maximum"`
	Enum         []json.RawMessage  `json:"enum"`
	Const        json.RawMessage    `json:"const"`
	KnownValues  []string           `json:"knownValues"`
	Accept       []string           `json:"accept"`
	MaxSize      *int64             `json:"maxSize"`
	Record       *Schema            `json:"record"`
	Output       *Body              `json:"output"`
	Input        *Body              `json:"input"`
}

// Body is the input or output of a query or procedure.
type Body struct {
	Encoding string  `json:"encoding"`
	Schema   *Schema `json:"schema"`
}

// Doc is one lexicon file.
type Doc struct {
	Lexicon int                `json:"lexicon"`
	ID      string             `json:"id"`
	Defs    map[string]*Schema `json:"defs"`
}

// Catalog is a directory of lexicon files laid out by NSID
// (com/atproto/sync/getRepo.json), loaded on first use. It is safe for
// concurrent use.
type Catalog struct {
	dir string

	mu   sync.Mutex
	docs map[string]*Doc
}

// NewCatalog returns a catalog of the lexicons under dir.
func NewCatalog(dir string) *Catalog {
	return &Catalog{dir: dir, docs: map[string]*Doc{}}
}

// Doc returns the lexicon file of nsid.
func (c *Catalog) Doc(nsid string) (*Doc, error) {
	if _, err := syntax.ParseNSID(nsid); err != nil {
		return nil, fmt.Errorf("lexcheck: %w: %q is not an NSID: %v", ErrSchema, nsid, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if d, ok := c.docs[nsid]; ok {
		return d, nil
	}
	path := filepath.Join(c.dir, filepath.FromSlash(strings.ReplaceAll(nsid, ".", "/"))+".json")
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("lexcheck: %w: %s: %w", ErrSchema, nsid, err)
	}
	var d Doc
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("lexcheck: %w: %s: %w", ErrSchema, path, err)
	}
	if d.ID != nsid {
		return nil, fmt.Errorf("lexcheck: %w: %s has id %q", ErrSchema, path, d.ID)
	}
	if d.Lexicon != 1 {
		return nil, fmt.Errorf("lexcheck: %w: %s: lexicon version %d", ErrSchema, path, d.Lexicon)
	}
	c.docs[nsid] = &d
	return &d, nil
}

// Resolve finds the definition a ref names, relative to the lexicon file
// from (an NSID): "#name" in from, "nsid#name", or "nsid" for its main
// definition. It returns the definition and its full name ("nsid#name", or
// "nsid" for main), which is the $type of objects of that definition.
func (c *Catalog) Resolve(from, ref string) (*Schema, string, error) {
	nsid, name, hasHash := strings.Cut(ref, "#")
	if nsid == "" {
		nsid = from
	}
	if !hasHash {
		name = "main"
	}
	if name == "" {
		return nil, "", fmt.Errorf("lexcheck: %w: ref %q names no definition", ErrSchema, ref)
	}
	d, err := c.Doc(nsid)
	if err != nil {
		return nil, "", err
	}
	s, ok := d.Defs[name]
	if !ok {
		return nil, "", fmt.Errorf("lexcheck: %w: %s has no definition %q", ErrSchema, nsid, name)
	}
	full := nsid
	if name != "main" {
		full += "#" + name
	}
	return s, full, nil
}

// OutputSchema returns the JSON output schema of a query or procedure.
func (c *Catalog) OutputSchema(nsid string) (*Schema, error) {
	s, _, err := c.Resolve(nsid, nsid)
	if err != nil {
		return nil, err
	}
	if s.Type != "query" && s.Type != "procedure" {
		return nil, fmt.Errorf("lexcheck: %w: %s is a %s, not a query or procedure", ErrSchema, nsid, s.Type)
	}
	if s.Output == nil || s.Output.Schema == nil {
		return nil, fmt.Errorf("lexcheck: %w: %s has no output schema", ErrSchema, nsid)
	}
	if s.Output.Encoding != "application/json" {
		return nil, fmt.Errorf("lexcheck: %w: %s outputs %s, not JSON", ErrSchema, nsid, s.Output.Encoding)
	}
	return s.Output.Schema, nil
}
