package upload

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
)

// tokenBytes random bytes make a token: 192 bits, 32 base64url characters.
const tokenBytes = 24

// Bounds of a token's length: 22 base64url characters carry 132 bits, the
// least that still meets the 128-bit floor; the upper bound keeps paths sane.
const (
	minTokenLen = 22
	maxTokenLen = 128
)

// NewToken returns a fresh upload token: 24 bytes from crypto/rand in
// unpadded base64url (32 characters of [A-Za-z0-9_-]), safe in a URL path.
func NewToken() (string, error) {
	b := make([]byte, tokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("upload token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// validToken tells whether s has the shape of a token: base64url
// characters, minTokenLen..maxTokenLen long. Anything else in the path is
// answered 404 before any lookup or file name is derived from it.
func validToken(s string) bool {
	if len(s) < minTokenLen || len(s) > maxTokenLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}

// tokenHash is the hex SHA-256 of the token: spool file names derive from it
// so that a directory listing never reveals a token, yet the same token
// finds its spool file again after a restart.
func tokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// fingerprint names a token in log lines and messages: the first 8 hex
// digits of its SHA-256, enough to correlate, useless to upload.
func fingerprint(token string) string {
	return tokenHash(token)[:8]
}
