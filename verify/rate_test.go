package verify

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"
)

func TestParseRate(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int64
	}{
		{"", 0}, {"0", 0}, {"unlimited", 0},
		{"1048576", 1 << 20}, {"200MiB/s", 200 << 20}, {"200MiB", 200 << 20}, {"200mib/s", 200 << 20},
		{"1.5GiB/s", 3 << 29}, {"10MB/s", 10e6}, {"64KiB", 64 << 10}, {"512B/s", 512}, {"2Mi", 2 << 20}, {" 1k ", 1000},
	} {
		got, err := ParseRate(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseRate(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"fast", "-1MiB", "MiB", "1XB/s", "0.5", "1e30GiB", "NaN"} {
		if got, err := ParseRate(bad); err == nil {
			t.Errorf("ParseRate(%q) = %d, want an error", bad, got)
		}
	}
}

func TestNewLimiter(t *testing.T) {
	if newLimiter(0) != nil {
		t.Error("rate 0 is unlimited: want no limiter")
	}
	if l := newLimiter(1 << 30); l.Burst() != 1<<30 || l.Limit() != 1<<30 {
		t.Errorf("1GiB/s: burst %d limit %v", l.Burst(), l.Limit())
	}
	if l := newLimiter(10); l.Burst() != readChunk {
		t.Errorf("10B/s: burst %d, want one read of %d", l.Burst(), readChunk)
	}
	var r io.Reader = bytes.NewReader(nil)
	if limitReader(context.Background(), r, nil) != r {
		t.Error("no limiter: want the reader itself")
	}
}

// TestLimitedReaderTakesTokens: every byte read through the reader is
// taken from the bucket (counted, not timed), and reads never ask for more
// than the bucket holds.
func TestLimitedReaderTakesTokens(t *testing.T) {
	l := newLimiter(1) // burst readChunk, refilled at 1 byte/s
	data := bytes.Repeat([]byte("x"), readChunk-1000)
	got, err := io.ReadAll(limitReader(context.Background(), bytes.NewReader(data), l))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes, %v", len(got), err)
	}
	// Whatever the time taken, far less than 100 tokens came back at 1/s.
	if tokens := l.TokensAt(time.Now()); tokens < 1000 || tokens > 1100 {
		t.Errorf("tokens left %v, want about 1000", tokens)
	}
}

// TestLimitedReaderCancelled: with the bucket empty a cancelled context
// ends the read with its error rather than waiting.
func TestLimitedReaderCancelled(t *testing.T) {
	l := newLimiter(1)
	ctx, cancel := context.WithCancel(context.Background())
	r := limitReader(ctx, bytes.NewReader(make([]byte, 3*readChunk)), l)
	if _, err := io.ReadFull(r, make([]byte, readChunk)); err != nil {
		t.Fatalf("first burst: %v", err)
	}
	cancel()
	if _, err := r.Read(make([]byte, readChunk)); !errors.Is(err, context.Canceled) {
		t.Fatalf("read past the burst after cancel: %v, want context.Canceled", err)
	}
}
