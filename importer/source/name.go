package source

import (
	"path"
	"strings"
	"unicode"
	"unicode/utf8"
)

// DefaultName is the disk file name used when a source offers none.
const DefaultName = "disk.img"

// MaxNameLen bounds a sanitized name in bytes; tar's classic name field
// holds 100 bytes and disk/ names longer than that help nobody.
const MaxNameLen = 100

// maxExtLen is the longest extension SanitizeName keeps when it shortens a
// name; a longer "extension" is just part of the name.
const maxExtLen = 16

// SanitizeName turns a name taken from a file path, URL, HTTP header or tar
// entry into a safe file name for disk/<name>: its last path element, without
// control characters or invalid UTF-8, without "..", at most MaxNameLen bytes
// (the extension kept), and DefaultName when nothing usable is left. Names
// come from untrusted servers and images, hence the paranoia.
func SanitizeName(name string) string {
	name = strings.ReplaceAll(name, `\`, "/")
	name = path.Base("/" + name)
	name = strings.Map(dropControl, strings.ToValidUTF8(name, ""))
	for strings.Contains(name, "..") {
		name = strings.ReplaceAll(name, "..", ".")
	}
	name = strings.Trim(name, " .")
	if name == "" || name == "/" {
		return DefaultName
	}
	return shorten(name)
}

func dropControl(r rune) rune {
	if unicode.IsControl(r) || r == utf8.RuneError {
		return -1
	}
	return r
}

// shorten cuts name to MaxNameLen bytes on a rune boundary, keeping a short
// extension so a shortened "x…x.qcow2" still says what it is.
func shorten(name string) string {
	if len(name) <= MaxNameLen {
		return name
	}
	ext := path.Ext(name)
	if len(ext) > maxExtLen {
		ext = ""
	}
	stem := name[:len(name)-len(ext)]
	limit := MaxNameLen - len(ext)
	for limit > 0 && !utf8.RuneStart(stem[limit]) {
		limit--
	}
	return strings.TrimRight(stem[:limit], " .") + ext
}
