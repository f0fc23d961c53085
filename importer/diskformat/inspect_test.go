package diskformat

import (
	"bytes"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func feedChunks(data []byte, chunk int) (Info, error) {
	in := NewInspector()
	for len(data) > 0 {
		n := min(chunk, len(data))
		if _, err := in.Write(data[:n]); err != nil {
			in.Abort()
			return Info{}, err
		}
		data = data[n:]
	}
	return in.Close()
}

var compressions = []struct {
	ext  string
	comp Compression
}{{"", None}, {".gz", Gzip}, {".xz", XZ}, {".zst", Zstd}}

func formatOf(name string) Format {
	switch filepath.Ext(name) {
	case ".qcow2":
		return QCOW2
	case ".vmdk":
		return VMDK
	case ".vdi":
		return VDI
	case ".iso":
		return ISO
	}
	return Raw
}

func TestValidImages(t *testing.T) {
	dir := images(t)
	for _, name := range plainImages {
		want := qemuVirtualSize(t, dir, name)
		for _, c := range compressions {
			t.Run(name+c.ext, func(t *testing.T) {
				data := readFile(t, filepath.Join(dir, name+c.ext))
				in := NewInspector()
				if _, err := in.Write(data); err != nil {
					t.Fatal(err)
				}
				info, err := in.Close()
				if err != nil {
					t.Fatal(err)
				}
				if n := in.Unchecked(); n != 0 {
					t.Errorf("%d tables unchecked in a qemu-img image", n)
				}
				wantInfo := Info{Format: formatOf(name), Compression: c.comp, VirtualSize: want,
					SourceSize: int64(len(data)), CDROM: formatOf(name) == ISO}
				if info != wantInfo {
					t.Fatalf("got %+v, want %+v", info, wantInfo)
				}
			})
		}
	}
}

func TestChunkSizes(t *testing.T) {
	dir := images(t)
	for _, name := range []string{"v3.qcow2", "compressed.qcow2", "sparse.vmdk", "footer.vmdk", "disk.vdi", "disk.iso", "odd.img"} {
		for _, c := range compressions {
			data := readFile(t, filepath.Join(dir, name+c.ext))
			want, err := Inspect(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			for _, chunk := range []int{1, 7, 4099, 65537, 1<<20 + 3, 8 << 20} {
				if chunk < 100 && len(data) > 1<<20 {
					continue // byte-sized writes only on small inputs
				}
				t.Run(name+c.ext+"/"+strconv.Itoa(chunk), func(t *testing.T) {
					got, err := feedChunks(data, chunk)
					if err != nil || got != want {
						t.Fatalf("got %+v, %v; want %+v", got, err, want)
					}
				})
			}
		}
	}
}

func cut(t *testing.T, dir, name string, frac float64) []byte {
	data := readFile(t, filepath.Join(dir, name))
	return data[:int(float64(len(data))*frac)]
}

func patched(t *testing.T, dir, name string, off int, fn func(b []byte)) []byte {
	data := readFile(t, filepath.Join(dir, name))
	fn(data[off:])
	return data
}

func TestRefusals(t *testing.T) {
	dir := images(t)
	iso := readFile(t, filepath.Join(dir, "disk.iso"))
	hidden := func(header string) []byte {
		b := bytes.Clone(iso)
		copy(b, readFile(t, filepath.Join(dir, header))[:4096])
		return b
	}
	tests := []struct {
		name string
		data []byte
		err  error
		msg  string
	}{
		{"backing file", readFile(t, filepath.Join(dir, "overlay.qcow2")), ErrBackingFile, `backing file ("base.qcow2")`},
		{"data file", readFile(t, filepath.Join(dir, "datafile.qcow2")), ErrExternalDataFile, `"ext.raw"`},
		{"unknown feature", patched(t, dir, "v3.qcow2", 79, func(b []byte) { b[0] |= 0x20 }), ErrUnknownFeatures, "bits 5"},
		{"corrupt bit", patched(t, dir, "v3.qcow2", 79, func(b []byte) { b[0] |= 0x02 }), ErrCorrupt, "marked corrupt"},
		{"vmdk descriptor file", readFile(t, filepath.Join(dir, "flat.vmdk")), ErrExtentFile, "flat-flat.vmdk"},
		{"descriptor without comment", []byte("\n  \nversion=1\r\ncreateType=\"monolithicFlat\"\nRW 8 FLAT \"/etc/passwd\" 0\n"),
			ErrExtentFile, `"/etc/passwd"`},
		{"qcow2 in iso", hidden("v3.qcow2"), ErrAmbiguous, "qcow2 and iso"},
		{"vmdk in iso", hidden("sparse.vmdk"), ErrAmbiguous, "vmdk and iso"},
		{"vdi in iso", hidden("disk.vdi"), ErrAmbiguous, "vdi and iso"},
		{"vhd", readFile(t, filepath.Join(dir, "disk.vhd")), ErrUnsupportedFormat, "vhd images"},
		{"vhdx", readFile(t, filepath.Join(dir, "disk.vhdx")), ErrUnsupportedFormat, "vhdx images"},
		{"qcow1", []byte("QFI\xfb\x00\x00\x00\x01" + strings.Repeat("\x00", 100)), ErrUnsupportedFormat, "qcow version 1"},
		{"bzip2", []byte("BZh91AY&SY" + strings.Repeat("x", 100)), ErrUnsupportedFormat, "bzip2 compression"},
		{"truncated qcow2", cut(t, dir, "v3.qcow2", 0.5), ErrTruncated, "qcow2 image is truncated"},
		{"truncated qcow2 tables", readFile(t, filepath.Join(dir, "v3.qcow2"))[:70000], ErrTruncated, "table ends at byte"},
		{"truncated extended-L2 qcow2", cut(t, dir, "extl2.qcow2", 0.5), ErrTruncated, "data cluster"},
		{"truncated fixed vdi", cut(t, dir, "fixed.vdi", 0.9), ErrTruncated, "vdi image is truncated"},
		{"truncated compressed qcow2", cut(t, dir, "compressed.qcow2", 0.5), ErrTruncated, "qcow2 image is truncated"},
		{"truncated vmdk", cut(t, dir, "sparse.vmdk", 0.5), ErrTruncated, "vmdk image is truncated"},
		{"truncated vmdk stream", cut(t, dir, "stream.vmdk", 0.5), ErrTruncated, "vmdk image is truncated"},
		{"truncated vmdk footer", cut(t, dir, "footer.vmdk", 0.5), ErrTruncated, "footer"},
		{"vmdk footer cut by a sector", cut(t, dir, "footer.vmdk", 0.99999), ErrTruncated, "footer"},
		{"truncated vdi", cut(t, dir, "disk.vdi", 0.5), ErrTruncated, "vdi image is truncated"},
		{"truncated iso", cut(t, dir, "disk.iso", 0.5), ErrTruncated, "iso image is truncated"},
		{"truncated xz raw", cut(t, dir, "raw.img.xz", 0.5), ErrTruncated, "xz"},
		{"truncated xz iso", cut(t, dir, "disk.iso.xz", 0.9), ErrTruncated, "xz"},
		{"truncated xz qcow2", cut(t, dir, "v3.qcow2.xz", 0.5), ErrTruncated, ""},
		{"truncated gzip", cut(t, dir, "raw.img.gz", 0.5), ErrTruncated, "gzip stream ends"},
		{"truncated zstd", cut(t, dir, "raw.img.zst", 0.5), ErrTruncated, ""},
		{"corrupt gzip", patched(t, dir, "raw.img.gz", 600<<10, func(b []byte) { b[0] ^= 0xff; b[1] ^= 0x55 }), ErrCorrupt, "gzip stream is damaged"},
		{"empty", nil, ErrEmpty, "no bytes"},
		{"empty gzip", []byte{0x1f, 0x8b}, ErrTruncated, "gzip"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, chunk := range []int{4096, 8 << 20} {
				_, err := feedChunks(tc.data, chunk)
				if !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.msg) {
					t.Fatalf("chunk %d: got %v, want %v containing %q", chunk, err, tc.err, tc.msg)
				}
			}
		})
	}
}

// TestEarlyRefusal: a backing file is refused by Write, before the end.
func TestEarlyRefusal(t *testing.T) {
	dir := images(t)
	data := readFile(t, filepath.Join(dir, "overlay.qcow2"))
	data = append(data, make([]byte, 1<<20)...)
	in := NewInspector()
	defer in.Abort()
	if _, err := in.Write(data[:128<<10]); !errors.Is(err, ErrBackingFile) {
		t.Fatalf("Write: got %v, want ErrBackingFile", err)
	}
}

func TestAbort(t *testing.T) {
	dir := images(t)
	for _, ext := range []string{".gz", ".xz", ".zst", ""} {
		data := readFile(t, filepath.Join(dir, "v3.qcow2"+ext))
		in := NewInspector()
		if _, err := in.Write(data[:len(data)/2]); err != nil {
			t.Fatal(err)
		}
		in.Abort()
		in.Abort()
		if _, err := in.Write(data[len(data)/2:]); !errors.Is(err, ErrAborted) {
			t.Fatalf("%s: Write after Abort: %v", ext, err)
		}
	}
}
