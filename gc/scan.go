// Scan: a repository's revisions, tags, tag history and layer links as
// found in storage, read through the driver in one walk each.

package gc

import (
	"context"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/opencontainers/go-digest"

	"github.com/dvcr/dvcr/storage"
)

// sweepRepo is a repository's manifests and tags as found in storage.
type sweepRepo struct {
	name      string
	revisions map[digest.Digest]time.Time // revision link modification times
	tags      []sweepTag
	tagIndex  map[digest.Digest][]string // tags/<t>/index/<alg>/<hex> directories
}

type sweepTag struct {
	name string
	link string // tags/<t>/current/link
}

// scanRepository reads a repository's revisions, tags and layer links.
func (s *sweeper) scanRepository(ctx context.Context, name string) (*sweepRepo, error) {
	dir := storage.RepositoryDir(name)
	repo := &sweepRepo{
		name:      name,
		revisions: make(map[digest.Digest]time.Time),
		tagIndex:  make(map[digest.Digest][]string),
	}
	manifests := path.Join(dir, "_manifests")
	err := s.driver.Walk(ctx, manifests, func(fi storagedriver.FileInfo) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if fi.IsDir() {
			return nil
		}
		parts := strings.Split(strings.TrimPrefix(fi.Path(), manifests+"/"), "/")
		switch {
		case len(parts) == 4 && parts[0] == "revisions" && parts[3] == "link":
			d, ok := sweepDigest(parts[1], parts[2])
			switch {
			case ok:
				repo.revisions[d] = fi.ModTime()
			case !s.opts.DeleteUntagged || fi.ModTime().After(s.cutoff):
				// A manifest to keep, but what it references is unknown.
				return fmt.Errorf("repository %s: kept manifest revision %s:%s: invalid or unsupported digest", name, parts[1], parts[2])
			}
		case len(parts) == 4 && parts[0] == "tags" && parts[2] == "current" && parts[3] == "link":
			repo.tags = append(repo.tags, sweepTag{name: parts[1], link: fi.Path()})
		case len(parts) == 6 && parts[0] == "tags" && parts[2] == "index" && parts[5] == "link":
			if d, ok := sweepDigest(parts[3], parts[4]); ok {
				repo.tagIndex[d] = append(repo.tagIndex[d], path.Dir(fi.Path()))
			}
		}
		return nil
	})
	if err != nil && !sweepNotFound(err) {
		return nil, fmt.Errorf("repository %s: listing manifests: %w", name, err)
	}

	layers := path.Join(dir, "_layers")
	recent := make(map[digest.Digest]struct{})
	links := make(map[digest.Digest]string)
	err = s.driver.Walk(ctx, layers, func(fi storagedriver.FileInfo) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if fi.IsDir() {
			return nil
		}
		parts := strings.Split(strings.TrimPrefix(fi.Path(), layers+"/"), "/")
		if len(parts) != 3 || parts[2] != "link" {
			return nil
		}
		d, ok := sweepDigest(parts[0], parts[1])
		if !ok {
			return nil
		}
		if fi.ModTime().After(s.cutoff) {
			recent[d] = struct{}{}
		}
		links[d] = path.Dir(fi.Path())
		return nil
	})
	if err != nil && !sweepNotFound(err) {
		return nil, fmt.Errorf("repository %s: listing layers: %w", name, err)
	}
	s.mu.Lock()
	for d := range recent {
		s.recentLinks[d] = struct{}{}
	}
	for d, dir := range links {
		s.layerLinks[d] = append(s.layerLinks[d], dir)
	}
	s.mu.Unlock()
	sort.Slice(repo.tags, func(i, j int) bool { return repo.tags[i].name < repo.tags[j].name })
	return repo, nil
}

// readTag returns the digest a tag points to, or "" when the tag is gone.
func (s *sweeper) readTag(ctx context.Context, repo *sweepRepo, tag sweepTag) (digest.Digest, error) {
	content, err := s.driver.GetContent(ctx, tag.link)
	if err != nil {
		if sweepNotFound(err) {
			return "", nil
		}
		return "", fmt.Errorf("repository %s: reading tag %s: %w", repo.name, tag.name, err)
	}
	d, err := digest.Parse(strings.TrimSpace(string(content)))
	if err != nil {
		return "", fmt.Errorf("repository %s: tag %s: invalid link %q: %w", repo.name, tag.name, content, err)
	}
	return d, nil
}
