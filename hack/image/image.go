package main

import (
	"fmt"
	"path"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The runtime settings of the image. The chart's Deployment runs the same
// command (command: dvcr, args: serve --config <configDir>/config.yml) as
// UID/GID 64535.
var (
	imageUser       = fmt.Sprintf("%d:%d", dvcrID, dvcrID)
	imageEntrypoint = []string{"dvcr"}
	imageCmd        = []string{"serve", "--config", "/etc/docker/registry/config.yml"}
	imageEnv        = []string{"PATH=/" + binDir + ":/usr/bin:/bin"}
	// 5000: registry API; 5001: debug (health, Prometheus /metrics).
	imagePorts = []string{"5000/tcp", "5001/tcp"}
)

const (
	sourceURL   = "https://github.com/dvcr/dvcr"
	title       = "DVCR"
	description = "DVCR, the in-cluster OCI registry of virtual machine disk images, with an integrated garbage collector"
)

// labels are the org.opencontainers.image.* keys of the image: config labels
// of each image, annotations of each manifest and of the index.
func labels(s source) map[string]string {
	return map[string]string{
		"org.opencontainers.image.source":      sourceURL,
		"org.opencontainers.image.url":         sourceURL,
		"org.opencontainers.image.version":     s.version,
		"org.opencontainers.image.revision":    s.revision,
		"org.opencontainers.image.created":     s.created.Format(time.RFC3339),
		"org.opencontainers.image.title":       title,
		"org.opencontainers.image.description": description,
	}
}

// platform is linux/arch, with the variant arm64 images usually carry.
func platform(arch string) v1.Platform {
	p := v1.Platform{OS: "linux", Architecture: arch}
	if arch == "arm64" {
		p.Variant = "v8"
	}
	return p
}

// buildImage makes the OCI image of one platform: the layer and the config.
func buildImage(l v1.Layer, arch string, s source) (v1.Image, error) {
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	created := v1.Time{Time: s.created}
	img, err := mutate.Append(img, mutate.Addendum{
		Layer:     l,
		MediaType: types.OCILayer,
		History: v1.History{
			Created:   created,
			CreatedBy: "make image (hack/image): " + path.Join("/", binDir) + "/{dvcr,dvcr-cleaner}, CA certificates, passwd, group",
			Comment:   "revision " + s.revision,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("linux/%s: appending the layer: %w", arch, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("linux/%s: config: %w", arch, err)
	}
	cf = cf.DeepCopy()
	p := platform(arch)
	cf.OS, cf.Architecture, cf.Variant = p.OS, p.Architecture, p.Variant
	cf.Created = created
	cf.Config = v1.Config{
		User:         imageUser,
		Entrypoint:   imageEntrypoint,
		Cmd:          imageCmd,
		Env:          imageEnv,
		WorkingDir:   "/",
		ExposedPorts: map[string]struct{}{},
		Labels:       labels(s),
	}
	for _, port := range imagePorts {
		cf.Config.ExposedPorts[port] = struct{}{}
	}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return nil, fmt.Errorf("linux/%s: setting the config: %w", arch, err)
	}
	annotated, ok := mutate.Annotations(img, labels(s)).(v1.Image)
	if !ok {
		return nil, fmt.Errorf("linux/%s: annotating the manifest: not an image", arch)
	}
	return annotated, nil
}

// platformImage is the image of one platform with its layer.
type platformImage struct {
	arch  string
	image v1.Image
	layer layer
}

// buildIndex makes the OCI image index of the platforms' images.
func buildIndex(images []platformImage, s source) (v1.ImageIndex, error) {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, pi := range images {
		p := platform(pi.arch)
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        pi.image,
			Descriptor: v1.Descriptor{Platform: &p},
		})
	}
	annotated, ok := mutate.Annotations(idx, labels(s)).(v1.ImageIndex)
	if !ok {
		return nil, fmt.Errorf("annotating the index: not an index")
	}
	return annotated, nil
}
