package consolecmd

import (
	"strings"
	"testing"
)

func TestCheckLoopback(t *testing.T) {
	tests := []struct {
		listen  string
		wantErr string
	}{
		{"127.0.0.1:8089", ""},
		{"127.0.0.1:0", ""},
		{"localhost:8089", ""},
		{"[::1]:8089", ""},
		{"0.0.0.0:8089", "loopback address only"},
		{":8089", "loopback address only"},
		{"10.1.2.3:8089", "loopback address only"},
		{"8089", "missing port"},
	}
	for _, tt := range tests {
		t.Run(tt.listen, func(t *testing.T) {
			err := checkLoopback(tt.listen)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("checkLoopback(%q) = %v, want %q", tt.listen, err, tt.wantErr)
			}
		})
	}
}
