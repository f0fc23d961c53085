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
//
// It lists the few directories of the layout it needs instead of walking
// the repository: a walk stats every directory and file it passes, about 40
// driver calls for a repository with a handful of layers, and the mark runs
// inside the read-only window.
func (s *sweeper) scanRepository(ctx context.Context, name string) (*sweepRepo, error) {
	dir := storage.RepositoryDir(name)
	repo := &sweepRepo{
		name:      name,
		revisions: make(map[digest.Digest]time.Time),
		tagIndex:  make(map[digest.Digest][]string),
	}
	manifests := path.Join(dir, "_manifests")
	if err := s.scanRevisions(ctx, repo, path.Join(manifests, "revisions")); err != nil {
		return nil, err
	}
	if err := s.scanTags(ctx, repo, path.Join(manifests, "tags")); err != nil {
		return nil, err
	}
	if err := s.scanLayers(ctx, repo, path.Join(dir, "_layers")); err != nil {
		return nil, err
	}
	sort.Slice(repo.tags, func(i, j int) bool { return repo.tags[i].name < repo.tags[j].name })
	return repo, nil
}

// digestDirs lists <root>/<alg>/<hex> and calls fn for each; alg and hex
// are the path elements, whether or not they make a valid digest.
func (s *sweeper) digestDirs(ctx context.Context, root string, fn func(alg, hex, dir string) error) error {
	algorithms, err := s.driver.List(ctx, root)
	if sweepNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, alg := range algorithms {
		dirs, err := s.driver.List(ctx, alg)
		if sweepNotFound(err) {
			continue
		}
		if err != nil {
			return err
		}
		for _, d := range dirs {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := fn(path.Base(alg), path.Base(d), d); err != nil {
				return err
			}
		}
	}
	return nil
}

// scanRevisions reads _manifests/revisions/<alg>/<hex>/link: the manifests
// of the repository, with the modification times of their links.
func (s *sweeper) scanRevisions(ctx context.Context, repo *sweepRepo, root string) error {
	err := s.digestDirs(ctx, root, func(alg, hex, dir string) error {
		fi, err := s.driver.Stat(ctx, path.Join(dir, "link"))
		if sweepNotFound(err) {
			return nil // no link: not a revision
		}
		if err != nil {
			return err
		}
		d, ok := sweepDigest(alg, hex)
		switch {
		case ok:
			repo.revisions[d] = fi.ModTime()
		case !s.opts.DeleteUntagged || fi.ModTime().After(s.cutoff):
			// A manifest to keep, but what it references is unknown.
			return fmt.Errorf("kept manifest revision %s:%s: invalid or unsupported digest", alg, hex)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("repository %s: listing manifests: %w", repo.name, err)
	}
	return nil
}

// scanTags reads _manifests/tags/<tag>: the current link of each tag (read
// later by readTag) and its history, tags/<tag>/index/<alg>/<hex>.
func (s *sweeper) scanTags(ctx context.Context, repo *sweepRepo, root string) error {
	tags, err := s.driver.List(ctx, root)
	if sweepNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("repository %s: listing tags: %w", repo.name, err)
	}
	for _, tagDir := range tags {
		repo.tags = append(repo.tags, sweepTag{name: path.Base(tagDir), link: path.Join(tagDir, "current", "link")})
		err := s.digestDirs(ctx, path.Join(tagDir, "index"), func(alg, hex, dir string) error {
			if d, ok := sweepDigest(alg, hex); ok {
				repo.tagIndex[d] = append(repo.tagIndex[d], dir)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("repository %s: listing the history of tag %s: %w", repo.name, path.Base(tagDir), err)
		}
	}
	return nil
}

// scanLayers reads _layers/<alg>/<hex>: the blobs the repository links, and
// with a grace period those it linked within it (the link's modification
// time is read only then).
func (s *sweeper) scanLayers(ctx context.Context, repo *sweepRepo, root string) error {
	recent := make(map[digest.Digest]struct{})
	links := make(map[digest.Digest]string)
	err := s.digestDirs(ctx, root, func(alg, hex, dir string) error {
		d, ok := sweepDigest(alg, hex)
		if !ok {
			return nil
		}
		if s.opts.GracePeriod > 0 {
			fi, err := s.driver.Stat(ctx, path.Join(dir, "link"))
			if sweepNotFound(err) {
				return nil
			}
			if err != nil {
				return err
			}
			if fi.ModTime().After(s.cutoff) {
				recent[d] = struct{}{}
			}
		}
		links[d] = dir
		return nil
	})
	if err != nil {
		return fmt.Errorf("repository %s: listing layers: %w", repo.name, err)
	}
	s.mu.Lock()
	for d := range recent {
		s.recentLinks[d] = struct{}{}
	}
	for d, dir := range links {
		s.layerLinks[d] = append(s.layerLinks[d], dir)
	}
	s.mu.Unlock()
	return nil
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
