package e2e

import (
	"regexp"
	"strings"
	"testing"

	"github.com/dvcr/dvcr/test/dvcrtest"
)

// s3Usage is the usage rows of gc check on object storage: the bytes used,
// and no total, available or percentage that a bucket does not have.
var s3Usage = regexp.MustCompile(`(?m)^  Total     Used    Avail     Use%\n +- +[0-9.]+[KMGTP]?i?B +- +-\n\(object storage: a bucket has no fixed capacity, so no total or available space\)\n`)

// TestGCOnS3: the seed's scenario with the registry on S3 (versitygw): gc
// check reports the same registry, cluster and eligible images as on the
// filesystem, with the bytes used instead of a volume's space; gc run
// deletes them, says how much it freed and how much is used, and the live
// images still pull.
func TestGCOnS3(t *testing.T) {
	fs := newSeedScenario(t)
	s3 := dvcrtest.StartS3(t)
	s := newSeedScenarioOn(t, dvcrtest.ServerOptions{Storage: s3.StorageYAML(), DVCR: noGrace})

	onFS, onS3 := fs.cleaner(t, "gc", "check"), s.cleaner(t, "gc", "check")
	if onS3.ExitCode != 0 || !s3Usage.MatchString(onS3.Stdout) {
		t.Fatalf("gc check on S3: exit %d\n%s\n%s", onS3.ExitCode, onS3.Stdout, onS3.Stderr)
	}
	if got, want := withoutUsage(onS3.Stdout), withoutUsage(onFS.Stdout); got != want {
		t.Errorf("gc check on S3:\n%s\non the filesystem:\n%s", got, want)
	}

	// The seed pushes one disk everywhere; a disk of its own in an eligible
	// repository gives the run something to free.
	dvcrtest.Push(t, s.srv, dvcrtest.MakeDisk(t, "own", "raw", "2M", 2<<20), "cvi/debian-12", "latest")
	res := s.cleaner(t, "gc", "run", "--yes")
	if res.ExitCode != 0 || !regexp.MustCompile(`Freed space after cleanup: [1-9][0-9.]*[KMG]iB\. Used space [0-9.]+[KMG]iB \(object storage: no fixed capacity\)\.`).MatchString(res.Stdout) {
		t.Fatalf("gc run on S3: exit %d\n%s\n%s", res.ExitCode, res.Stdout, res.Stderr)
	}
	if after := s.cleaner(t, "gc", "check"); !strings.Contains(after.Stdout, "No images eligible for cleanup.") {
		t.Errorf("gc check after the run:\n%s", after.Stdout)
	}
	for _, repo := range []string{"cvi/alpine", "vi/prod/rocky", "vd/default/provisioning"} {
		assertSameDisk(t, s.disk, dvcrtest.Pull(t, s.srv, repo, "latest"))
	}
}

// withoutUsage drops the usage rows of a gc check report.
func withoutUsage(report string) string {
	var keep []string
	lines := strings.Split(report, "\n")
	for i := 0; i < len(lines); i++ {
		if strings.HasPrefix(lines[i], "  Total") {
			i++ // the figures
			if i+1 < len(lines) && strings.HasPrefix(lines[i+1], "(object storage") {
				i++
			}
			continue
		}
		keep = append(keep, lines[i])
	}
	return strings.Join(keep, "\n")
}
