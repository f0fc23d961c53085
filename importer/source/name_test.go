package source

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSanitizeName(t *testing.T) {
	long := strings.Repeat("a", 300) + ".qcow2"
	multibyte := strings.Repeat("й", 120) + ".img"
	tests := []struct {
		name, in, want string
	}{
		{"plain", "ubuntu.qcow2", "ubuntu.qcow2"},
		{"compressed", "ubuntu.qcow2.xz", "ubuntu.qcow2.xz"},
		{"empty", "", DefaultName},
		{"traversal", "../../etc/passwd", "passwd"},
		{"dotdot only", "..", DefaultName},
		{"dots only", "...", DefaultName},
		{"subdir", "a/b", "b"},
		{"trailing slash", "a/b/", "b"},
		{"root", "/", DefaultName},
		{"backslashes", `..\..\windows\disk.vhd`, "disk.vhd"},
		{"newline", "disk\n.img", "disk.img"},
		{"control chars", "di\x00sk\r\t\x1b.img", "disk.img"},
		{"invalid utf8", "disk\xff\xfe.img", "disk.img"},
		{"inner dotdot", "a..b.img", "a.b.img"},
		{"hidden", ".hidden", "hidden"},
		{"spaces", "  my disk.img  ", "my disk.img"},
		{"long keeps ext", long, strings.Repeat("a", 94) + ".qcow2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := SanitizeName(tc.in); got != tc.want {
				t.Errorf("SanitizeName(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
	t.Run("long multibyte", func(t *testing.T) {
		got := SanitizeName(multibyte)
		if len(got) > MaxNameLen || !utf8.ValidString(got) || !strings.HasSuffix(got, ".img") {
			t.Errorf("SanitizeName(long multibyte) = %q (%d bytes)", got, len(got))
		}
	})
}

func TestSanitizeNameInvariants(t *testing.T) {
	inputs := []string{"", "/", "..", "a/../..", "\x00", strings.Repeat("/..", 50), strings.Repeat("é", 200),
		strings.Repeat("x", 99) + ".averyveryverylongextension", "dir/\n\n/", "C:\\x\\..\\y"}
	for _, in := range inputs {
		got := SanitizeName(in)
		switch {
		case got == "", len(got) > MaxNameLen, strings.ContainsAny(got, "/\\"),
			strings.Contains(got, ".."), !utf8.ValidString(got):
			t.Errorf("SanitizeName(%q) = %q breaks an invariant", in, got)
		}
		for _, r := range got {
			if r < 0x20 || r == 0x7f {
				t.Errorf("SanitizeName(%q) = %q keeps a control character", in, got)
			}
		}
	}
}
