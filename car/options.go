package car

// Default limits. They fit atproto: records are at most 1 MB (spec:data-model)
// and MST nodes and commits are small, so a 2 MiB block bound leaves room for
// slack while keeping a hostile length prefix harmless. A header holds one
// root in practice (59 bytes); 64 KiB admits over a thousand roots.
const (
	DefaultMaxBlockSize  = 2 << 20
	DefaultMaxHeaderSize = 64 << 10
)

// Options bounds what a Reader accepts. The zero value (or a nil *Options)
// gives the defaults. Every limit is checked before the memory it guards is
// allocated, so a declared 4 GB block fails without allocating.
type Options struct {
	// MaxBlockSize is the largest block payload in bytes, the CID excluded.
	// Zero or negative means DefaultMaxBlockSize (2 MiB).
	MaxBlockSize int
	// MaxHeaderSize is the largest encoded header in bytes, the length
	// prefix excluded. Zero or negative means DefaultMaxHeaderSize (64 KiB).
	MaxHeaderSize int
	// MaxTotal is the largest number of bytes read, header and length
	// prefixes included. Zero or negative means unlimited: callers reading
	// from the network should set it (eg 100 MB for getRepo, or the 5 MB
	// frame limit when reading a firehose #commit's blocks).
	MaxTotal int64
	// MaxBlocks is the largest number of sections. Zero or negative means
	// unlimited.
	MaxBlocks int
}

// withDefaults returns a copy of o (which may be nil) with every unset limit
// replaced by its default.
func (o *Options) withDefaults() Options {
	var r Options
	if o != nil {
		r = *o
	}
	if r.MaxBlockSize <= 0 {
		r.MaxBlockSize = DefaultMaxBlockSize
	}
	if r.MaxHeaderSize <= 0 {
		r.MaxHeaderSize = DefaultMaxHeaderSize
	}
	if r.MaxTotal < 0 {
		r.MaxTotal = 0
	}
	if r.MaxBlocks < 0 {
		r.MaxBlocks = 0
	}
	return r
}
