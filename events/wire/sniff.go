package wire

// FrameType returns the t of a message frame's header ("#commit", ...), or
// "" for an error frame or bytes that do not start with a header this
// package writes. It reads only the header's first bytes: the committer's
// frames start with {t: ..., op: 1}, in that canonical order.
func FrameType(frame []byte) string {
	// a2 (map of 2) 61 74 ("t") 6n (text of n < 24 bytes) ...
	if len(frame) < 4 || frame[0] != 0xa2 || frame[1] != 0x61 || frame[2] != 't' {
		return ""
	}
	n := int(frame[3]) - 0x60
	if n < 1 || n > 23 || len(frame) < 4+n {
		return ""
	}
	return string(frame[4 : 4+n])
}
