package source

import (
	"crypto/sha256"
	"encoding/hex"
	mrand "math/rand/v2"
	"os"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	// Resume tests should not wait for production backoffs.
	backoffBase = 5 * time.Millisecond
	os.Exit(m.Run())
}

// testData returns n reproducible pseudo-random bytes.
func testData(n int) []byte {
	r := mrand.New(mrand.NewPCG(1, uint64(n)))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
