package verify

import (
	"context"
	"fmt"
	"path"
	"sort"

	"github.com/opencontainers/go-digest"

	"github.com/dvcr/dvcr/storage"
)

// checkRepository reports every tag of repo, then, as an image with no
// tag, the problems of links no tag reaches.
func (c *checker) checkRepository(ctx context.Context, repo string) error {
	base := c.imageOf(repo)
	dir := path.Join(storage.RepositoryDir(repo), "_manifests")
	tags, err := c.list(ctx, path.Join(dir, "tags"))
	if err != nil {
		return err
	}
	reported := map[digest.Digest]bool{}
	for _, tagDir := range tags {
		img := base
		img.Tag = path.Base(tagDir)
		problems := c.checkTag(ctx, repo, img.Tag)
		for _, p := range problems {
			reported[p.Blob] = true
		}
		c.addImage(img, problems)
	}
	stray, err := c.strayLinks(ctx, repo, reported)
	if err != nil {
		return err
	}
	if len(stray) > 0 {
		c.addImage(base, stray)
	}
	return nil
}

// checkTag follows a tag to its manifest and the manifest to its blobs.
func (c *checker) checkTag(ctx context.Context, repo, tag string) []Problem {
	link := path.Join(storage.RepositoryDir(repo), "_manifests", "tags", tag, "current", "link")
	d, problem := c.readLink(ctx, link)
	if problem != "" {
		return []Problem{{Problem: ProblemDanglingLink, Detail: "tag " + tag + ": " + problem}}
	}
	var problems []Problem
	c.checkManifest(ctx, repo, storage.ManifestRef{Digest: d, Manifest: true}, 0, &problems)
	return dedupe(problems)
}

// checkManifest checks a manifest's revision link and blob and then, when
// it can be read, everything it references.
func (c *checker) checkManifest(ctx context.Context, repo string, m storage.ManifestRef, depth int, problems *[]Problem) {
	found := c.linkedBlob(ctx, storage.RevisionLink(repo, m.Digest), m.Digest, m.Size)
	*problems = append(*problems, found...)
	if c.blobProblem(m.Digest, m.Size) != nil || depth > maxDepth {
		return
	}
	refs, err := c.manifestRefs(ctx, m.Digest)
	if err != nil {
		*problems = append(*problems, Problem{Blob: m.Digest, Problem: ProblemCorrupt, Detail: err.Error()})
		return
	}
	for _, r := range refs {
		if r.Manifest {
			c.checkManifest(ctx, repo, r, depth+1, problems)
			continue
		}
		*problems = append(*problems, c.linkedBlob(ctx, layerLink(repo, r.Digest), r.Digest, r.Size)...)
	}
}

// strayLinks checks every layer and revision link of repo; the problems
// of blobs not already reported through a tag.
func (c *checker) strayLinks(ctx context.Context, repo string, reported map[digest.Digest]bool) ([]Problem, error) {
	dir := storage.RepositoryDir(repo)
	var out []Problem
	for _, root := range []string{path.Join(dir, "_layers"), path.Join(dir, "_manifests", "revisions")} {
		links, err := c.linkDigests(ctx, root)
		if err != nil {
			return nil, err
		}
		digests := make([]digest.Digest, 0, len(links))
		for d := range links {
			digests = append(digests, d)
		}
		sort.Slice(digests, func(i, j int) bool { return digests[i] < digests[j] })
		for _, d := range digests {
			for _, p := range c.linkedBlob(ctx, links[d], d, 0) {
				if !reported[p.Blob] {
					out = append(out, p)
				}
			}
		}
	}
	return dedupe(out), nil
}

// imageOf names repo's image after its resource, as ls does.
func (c *checker) imageOf(repo string) Image {
	img := Image{Repository: repo}
	if r, ok := storage.ClassifyPath(repo); ok {
		img.Kind, img.Namespace, img.Name = r.Kind.ResourceKind(), r.Namespace, r.Name
	}
	return img
}

func (c *checker) addImage(img Image, problems []Problem) {
	img.Status = StatusOK
	if len(problems) > 0 {
		img.Status, img.Problems, img.Action = StatusProblem, problems, actionFor(img)
	}
	c.res.Images = append(c.res.Images, img)
}

// actionFor says how to repair an image: re-import it.
func actionFor(img Image) string {
	r, ok := storage.ClassifyPath(img.Repository)
	if !ok {
		return fmt.Sprintf("re-push the image to %s (not the repository of a resource)", img.Repository)
	}
	cmd := fmt.Sprintf("dvcr-cleaner delete %s %s", r.Kind, r.Name)
	if r.Kind.Namespaced() {
		cmd += " -n " + r.Namespace
	}
	return fmt.Sprintf("re-import the image: delete its repository with `%s`, then delete and recreate the %s", cmd, img.Kind)
}

func key(p Problem) Problem { return Problem{Blob: p.Blob, Problem: p.Problem} }

// dedupe keeps the first of each (blob, problem).
func dedupe(problems []Problem) []Problem {
	seen := map[Problem]bool{}
	var out []Problem
	for _, p := range problems {
		if !seen[key(p)] {
			seen[key(p)] = true
			out = append(out, p)
		}
	}
	return out
}
