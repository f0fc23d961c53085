package envtest

import (
	"bytes"
	"sync"
)

// tailBuffer keeps the last bytes written to it. kube-apiserver logs a lot;
// only the end matters when explaining a failure, and keeping everything
// would grow without bound in long tests. It is safe for the concurrent
// writers that os/exec starts for stdout and stderr.
type tailBuffer struct {
	mu    sync.Mutex
	limit int
	buf   bytes.Buffer
}

func newTailBuffer(limit int) *tailBuffer { return &tailBuffer{limit: limit} }

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	// Trim to half the limit so that trimming (a copy) happens rarely.
	if over := b.buf.Len() - b.limit; over > 0 {
		b.buf.Next(over + b.limit/2)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
