package verify

import (
	"context"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"golang.org/x/time/rate"
)

// rateUnits are the suffixes ParseRate accepts, IEC and SI.
var rateUnits = []struct {
	suffix string
	factor float64
}{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
	{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12},
	{"ki", 1 << 10}, {"mi", 1 << 20}, {"gi", 1 << 30}, {"ti", 1 << 40},
	{"k", 1e3}, {"m", 1e6}, {"g", 1e9}, {"t", 1e12},
	{"b", 1},
}

// ParseRate reads a throughput in bytes per second: "200MiB/s", "200MiB",
// "1.5GB/s" or plain bytes ("1048576"). Empty, "0" and "unlimited" mean no
// limit (0).
func ParseRate(s string) (int64, error) {
	v := strings.ToLower(strings.TrimSpace(s))
	if v == "" || v == "unlimited" {
		return 0, nil
	}
	v = strings.TrimSpace(strings.TrimSuffix(v, "/s"))
	factor := 1.0
	for _, u := range rateUnits {
		if num, ok := strings.CutSuffix(v, u.suffix); ok {
			v, factor = strings.TrimSpace(num), u.factor
			break
		}
	}
	n, err := strconv.ParseFloat(v, 64)
	if err != nil || n < 0 || math.IsInf(n, 0) || math.IsNaN(n) {
		return 0, fmt.Errorf("rate %q: want bytes per second, e.g. 200MiB/s, 200MiB or 1048576", s)
	}
	bytes := n * factor
	if bytes >= math.MaxInt64 {
		return 0, fmt.Errorf("rate %q: too large", s)
	}
	if bytes > 0 && bytes < 1 {
		return 0, fmt.Errorf("rate %q: less than one byte per second", s)
	}
	return int64(bytes), nil
}

// newLimiter is a token bucket of bytesPerSecond with one second's worth
// of burst (at least one read buffer); nil for no limit.
func newLimiter(bytesPerSecond int64) *rate.Limiter {
	if bytesPerSecond <= 0 {
		return nil
	}
	burst := max(bytesPerSecond, readChunk)
	if burst > math.MaxInt32 {
		burst = math.MaxInt32
	}
	return rate.NewLimiter(rate.Limit(bytesPerSecond), int(burst))
}

// readChunk is the most a limited reader reads at once.
const readChunk = 64 << 10

// limitedReader takes tokens for every byte it returns.
type limitedReader struct {
	ctx     context.Context
	r       io.Reader
	limiter *rate.Limiter
}

// limitReader wraps r so that reads through it stay under the limiter's
// rate; r itself when limiter is nil.
func limitReader(ctx context.Context, r io.Reader, limiter *rate.Limiter) io.Reader {
	if limiter == nil {
		return r
	}
	return &limitedReader{ctx: ctx, r: r, limiter: limiter}
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if len(p) > readChunk {
		p = p[:readChunk]
	}
	if len(p) > l.limiter.Burst() {
		p = p[:l.limiter.Burst()]
	}
	n, err := l.r.Read(p)
	if n > 0 {
		if werr := l.limiter.WaitN(l.ctx, n); werr != nil {
			return n, fmt.Errorf("waiting for the read rate limit: %w", werr)
		}
	}
	return n, err
}
