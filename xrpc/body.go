package xrpc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"
)

// DecodeJSON reads a procedure's JSON input into v. The rules, following
// the TypeScript reference where it has one:
//
//   - Content-Type must be application/json (parameters allowed; a charset
//     other than utf-8 is refused). A missing or other type is 400
//     InvalidRequest, as the reference answers, not 415: clients key off the
//     error name, and the lexicon declares no UnsupportedMediaType.
//   - A body over maxBytes (DefaultMaxBodyBytes if <= 0) is 413 PayloadTooLarge (also when the route's
//     own limit is hit first).
//   - The body must be one JSON object in valid UTF-8, with nothing after
//     it; otherwise 400 InvalidRequest. Unknown fields are ignored, so
//     clients built on newer lexicons keep working.
func DecodeJSON(r *http.Request, v any, maxBytes int64) error {
	if err := checkJSONContentType(r.Header.Get("Content-Type")); err != nil {
		return err
	}
	body, err := ReadBody(r, maxBytes)
	if err != nil {
		return err
	}
	return decodeJSONObject(body, v)
}

func checkJSONContentType(ct string) error {
	if ct == "" {
		return InvalidRequest("Request encoding (Content-Type) required but not provided")
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return InvalidRequestf("Wrong request encoding (Content-Type): %s", ct)
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return InvalidRequestf("Wrong request encoding (Content-Type): %s", ct)
	}
	return nil
}

func decodeJSONObject(body []byte, v any) error {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return InvalidRequest("Request body is empty")
	}
	if trimmed[0] != '{' {
		return InvalidRequest("Request body must be a JSON object")
	}
	if !utf8.Valid(body) {
		return InvalidRequest("Request body is not valid UTF-8")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return InvalidRequest("Invalid JSON input: " + jsonProblem(err)).WithCause(err)
	}
	return nil
}

// jsonProblem describes a decoding error for the client: where, and what,
// without Go type names.
func jsonProblem(err error) string {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		if typeErr.Field != "" {
			return fmt.Sprintf("field %q has the wrong type (%s)", typeErr.Field, typeErr.Value)
		}
		return fmt.Sprintf("wrong type (%s)", typeErr.Value)
	}
	var syntaxErr *json.SyntaxError
	if errors.As(err, &syntaxErr) {
		return fmt.Sprintf("%s at offset %d", syntaxErr.Error(), syntaxErr.Offset)
	}
	return err.Error()
}

// ReadBody reads the whole request body, at most maxBytes of it: a larger
// body (by Content-Length, or found while reading) is 413 PayloadTooLarge.
// A maxBytes of zero or less means DefaultMaxBodyBytes. For bodies that are
// not JSON (uploadBlob's bytes); large ones should be
// streamed instead, under the route's MaxBodyBytes.
func ReadBody(r *http.Request, maxBytes int64) ([]byte, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBodyBytes
	}
	if r.ContentLength > maxBytes {
		return nil, PayloadTooLarge(maxBytes)
	}
	if r.Body == nil {
		return nil, nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBytes+1))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return nil, PayloadTooLarge(tooLarge.Limit).WithCause(err)
	case err != nil:
		// A client that sends less than it announced, or hangs up.
		return nil, InvalidRequest("Could not read the request body").WithCause(err)
	case int64(len(body)) > maxBytes:
		return nil, PayloadTooLarge(maxBytes)
	}
	return body, nil
}
