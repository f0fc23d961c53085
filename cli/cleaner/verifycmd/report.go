package verifycmd

import (
	"fmt"
	"io"

	"github.com/dvcr/dvcr/cli/cleaner/common"
	"github.com/dvcr/dvcr/verify"
)

// writeReport prints one row per sound image and one per problem of the
// others, what to do about each image with problems, and a summary line.
func writeReport(w io.Writer, r *verify.Result) error {
	if len(r.Images) == 0 {
		fmt.Fprintln(w, "No images in the registry.")
	} else if err := common.WriteTable(w, []string{"KIND", "NAMESPACE", "NAME", "REPOSITORY", "TAG", "STATUS", "BLOB", "DETAIL"}, imageRows(r)); err != nil {
		return err
	}
	for _, p := range r.Unreferenced {
		fmt.Fprintf(w, "Blob %s (linked by no repository): %s: %s\n", p.Blob, p.Problem, p.Detail)
	}
	if n := r.ImagesWithProblems(); n > 0 {
		fmt.Fprintln(w, "What to do:")
		for _, img := range r.Images {
			if img.Status != verify.StatusOK {
				fmt.Fprintf(w, "  %s: %s\n", imageRef(img), img.Action)
			}
		}
	}
	verdict := "Verification OK"
	if !r.OK() {
		verdict = "Verification found problems"
	}
	_, err := fmt.Fprintf(w, "%s: %s.\n", verdict, summaryLine(r))
	return err
}

func imageRows(r *verify.Result) [][]string {
	var rows [][]string
	for _, img := range r.Images {
		head := []string{img.Kind, img.Namespace, img.Name, img.Repository, tagOf(img)}
		if img.Status == verify.StatusOK {
			rows = append(rows, append(head, verify.StatusOK, "", ""))
			continue
		}
		for _, p := range img.Problems {
			rows = append(rows, append(append([]string{}, head...), p.Problem, blobOf(p), p.Detail))
		}
	}
	return rows
}

func imageRef(img verify.Image) string {
	return img.Repository + ":" + tagOf(img)
}

func tagOf(img verify.Image) string {
	if img.Tag == "" {
		return "(untagged)"
	}
	return img.Tag
}

func blobOf(p verify.Problem) string {
	if p.Blob == "" {
		return "-"
	}
	return string(p.Blob)
}
