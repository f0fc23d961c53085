package importer

import (
	"crypto/md5"  //nolint:gosec // md5 is what image publishers list
	"crypto/sha1" //nolint:gosec // so is sha1
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"strings"
)

// checksum is one expected digest of the source bytes.
type checksum struct {
	alg  string
	want string
	h    hash.Hash
}

var checksumAlgs = map[string]func() hash.Hash{
	"md5": md5.New, "sha1": sha1.New, "sha256": sha256.New, "sha512": sha512.New,
}

// parseChecksums reads ALG:HEX values (md5, sha1, sha256, sha512).
func parseChecksums(specs []string) ([]*checksum, error) {
	sums := make([]*checksum, 0, len(specs))
	for _, s := range specs {
		alg, hexsum, ok := strings.Cut(s, ":")
		alg = strings.ToLower(strings.TrimSpace(alg))
		newHash, known := checksumAlgs[alg]
		if !ok || !known {
			return nil, fmt.Errorf("%w: %q: want ALG:HEX with ALG one of md5, sha1, sha256, sha512", ErrBadChecksum, s)
		}
		h := newHash()
		hexsum = strings.ToLower(strings.TrimSpace(hexsum))
		if b, err := hex.DecodeString(hexsum); err != nil || len(b) != h.Size() {
			return nil, fmt.Errorf("%w: %q: %s wants %d hex digits", ErrBadChecksum, s, alg, 2*h.Size())
		}
		sums = append(sums, &checksum{alg: alg, want: hexsum, h: h})
	}
	return sums, nil
}

// checksumWriter feeds every expected checksum.
func checksumWriter(sums []*checksum) io.Writer {
	ws := make([]io.Writer, len(sums))
	for i, s := range sums {
		ws[i] = s.h
	}
	return io.MultiWriter(ws...)
}

// verifyChecksums compares what was received with what was expected.
func verifyChecksums(sums []*checksum) error {
	for _, s := range sums {
		if got := hex.EncodeToString(s.h.Sum(nil)); got != s.want {
			return fmt.Errorf("%w: %s of the source is %s, expected %s", ErrChecksumMismatch, s.alg, got, s.want)
		}
	}
	return nil
}
