package gc

import (
	"encoding/json"
	"testing"

	"github.com/distribution/distribution/v3/manifest/manifestlist"
	"github.com/distribution/distribution/v3/manifest/schema2"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/dvcr/dvcr/storage"
)

// markCases: what the mark keeps, through tags, indexes, referrers and in
// every kind of repository, and how it reads manifests.
var markCases = []sweepCase{
	{
		name: "blob shared with a deleted repository survives",
		run: func(t *testing.T, f *sweepFixture) {
			keptM, keptC, keptL := f.image("vi/ns/kept", "latest", "shared", "only-kept")
			goneM, goneC, goneL := f.image("vi/ns/gone", "latest", "shared", "only-gone")
			if err := storage.RemoveRepository(f.ctx, f.driver, "vi/ns/gone"); err != nil {
				t.Fatal(err)
			}
			stats, err := f.sweep(SweepOptions{DeleteUntagged: true, Now: later})
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range []digest.Digest{keptM.Digest, keptC.Digest, keptL[0].Digest, keptL[1].Digest} {
				if !f.hasBlob(d) {
					t.Errorf("blob %s of the kept repository deleted", d)
				}
			}
			if goneL[0].Digest != keptL[0].Digest {
				t.Fatal("shared layer has different digests")
			}
			gone := []digest.Digest{goneM.Digest, goneC.Digest, goneL[1].Digest}
			for _, d := range gone {
				if f.hasBlob(d) {
					t.Errorf("blob %s only the deleted repository referenced survived", d)
				}
			}
			want := SweepStats{Repositories: 1, BlobsTotal: 7, BlobsMarked: 4, BlobsDeleted: 3, FreedBytes: f.size(gone...)}
			sweepCheckStats(t, stats, want)
		},
	},
	{
		name: "tagged index keeps its child manifests and their layers",
		run: func(t *testing.T, f *sweepFixture) {
			amd, _, amdL := f.image("vi/ns/multi", "", "amd64-layer", "common")
			arm, _, armL := f.image("vi/ns/multi", "", "arm64-layer", "common")
			absent := v1.Descriptor{MediaType: v1.MediaTypeImageManifest, Digest: digest.FromString("not pushed"), Size: 10}
			idx := f.index("vi/ns/multi", "latest", amd, arm, absent) // sparse index
			untagged, _, untaggedL := f.image("vi/ns/multi", "", "untagged-layer")
			stats, err := f.sweep(SweepOptions{DeleteUntagged: true, Now: later})
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range []digest.Digest{idx.Digest, amd.Digest, arm.Digest, amdL[0].Digest, amdL[1].Digest, armL[0].Digest} {
				if !f.hasBlob(d) {
					t.Errorf("blob %s reached from the tagged index deleted", d)
				}
			}
			if !f.hasRevision("vi/ns/multi", amd.Digest) || !f.hasRevision("vi/ns/multi", arm.Digest) {
				t.Error("child manifest of the tagged index deleted")
			}
			if f.hasRevision("vi/ns/multi", untagged.Digest) || f.hasBlob(untaggedL[0].Digest) {
				t.Error("untagged manifest kept")
			}
			if stats.ManifestsDeleted != 1 || stats.BlobsDeleted != 3 {
				t.Errorf("stats %+v, want 1 manifest and 3 blobs deleted", stats)
			}
		},
	},
	{
		name: "docker manifest list and schema2 manifests",
		run: func(t *testing.T, f *sweepFixture) {
			repo := "library/busybox"
			var children []manifestlist.ManifestDescriptor
			var layers []digest.Digest
			for _, arch := range []string{"amd64", "arm64"} {
				layer := f.putBlob(repo, schema2.MediaTypeLayer, []byte(arch+" layer"))
				config := f.putBlob(repo, schema2.MediaTypeImageConfig, []byte(`{"architecture":"`+arch+`"}`))
				m, err := schema2.FromStruct(schema2.Manifest{
					Versioned: specs.Versioned{SchemaVersion: 2},
					MediaType: schema2.MediaTypeManifest,
					Config:    config,
					Layers:    []v1.Descriptor{layer},
				})
				if err != nil {
					t.Fatal(err)
				}
				desc := f.putManifest(repo, "", m, schema2.MediaTypeManifest)
				children = append(children, manifestlist.ManifestDescriptor{Descriptor: desc, Platform: manifestlist.PlatformSpec{Architecture: arch, OS: "linux"}})
				layers = append(layers, layer.Digest, config.Digest, desc.Digest)
			}
			list, err := manifestlist.FromDescriptors(children)
			if err != nil {
				t.Fatal(err)
			}
			f.putManifest(repo, "1.36", list, manifestlist.MediaTypeManifestList)
			unref := f.blob(repo, "unreferenced")
			stats, err := f.sweep(SweepOptions{DeleteUntagged: true, Now: later})
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range layers {
				if !f.hasBlob(d) {
					t.Errorf("blob %s reached from the manifest list deleted", d)
				}
			}
			sweepCheckStats(t, stats, SweepStats{Repositories: 1, BlobsTotal: 8, BlobsMarked: 7, BlobsDeleted: 1, FreedBytes: f.size(unref.Digest)})
		},
	},
	{
		name: "referrer of a kept manifest kept",
		run: func(t *testing.T, f *sweepFixture) {
			img, _, _ := f.image("vi/ns/signed", "latest", "layer")
			sig := f.putBlob("vi/ns/signed", "application/vnd.dev.cosign.simplesigning.v1+json", []byte("signature"))
			empty := f.putBlob("vi/ns/signed", v1.MediaTypeEmptyJSON, []byte("{}"))
			payload, err := json.Marshal(map[string]any{
				"schemaVersion": 2,
				"mediaType":     v1.MediaTypeImageManifest,
				"artifactType":  "application/vnd.dev.cosign.artifact.sig.v1+json",
				"config":        empty,
				"layers":        []v1.Descriptor{sig},
				"subject":       img,
			})
			if err != nil {
				t.Fatal(err)
			}
			referrer := f.rawManifest("vi/ns/signed", "", v1.MediaTypeImageManifest, payload)
			stats, err := f.sweep(SweepOptions{DeleteUntagged: true, Now: later})
			if err != nil {
				t.Fatal(err)
			}
			if !f.hasRevision("vi/ns/signed", referrer.Digest) || !f.hasBlob(sig.Digest) {
				t.Error("referrer of the tagged manifest deleted")
			}
			sweepCheckStats(t, stats, SweepStats{Repositories: 1, BlobsTotal: 6, BlobsMarked: 6})
		},
	},
	{
		name: "manifest without mediaType",
		run: func(t *testing.T, f *sweepFixture) {
			layer := f.blob("library/alpine", "layer")
			config := f.putBlob("library/alpine", v1.MediaTypeImageConfig, []byte(`{}`))
			payload, _ := json.Marshal(map[string]any{"schemaVersion": 2, "config": config, "layers": []v1.Descriptor{layer}})
			f.rawManifest("library/alpine", "3", v1.MediaTypeImageManifest, payload)
			stats, err := f.sweep(SweepOptions{DeleteUntagged: true, Now: later})
			if err != nil {
				t.Fatal(err)
			}
			if !f.hasBlob(layer.Digest) {
				t.Error("layer deleted")
			}
			sweepCheckStats(t, stats, SweepStats{Repositories: 1, BlobsTotal: 3, BlobsMarked: 3})
		},
	},
	{
		name: "every repository is marked: legacy vi/<name> with nested ones, unmanaged",
		run: func(t *testing.T, f *sweepFixture) {
			_, _, legacy := f.image("vi/legacy", "latest", "legacy-layer")
			_, _, nested := f.image("vi/legacy/vm", "latest", "nested-layer")
			_, _, unmanaged := f.image("library/alpine", "3.20", "alpine-layer")
			unref := f.blob("library/alpine", "unreferenced")
			stats, err := f.sweep(SweepOptions{DeleteUntagged: true, Now: later})
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range []digest.Digest{legacy[0].Digest, nested[0].Digest, unmanaged[0].Digest} {
				if !f.hasBlob(d) {
					t.Errorf("layer %s deleted", d)
				}
			}
			if f.hasBlob(unref.Digest) {
				t.Error("unreferenced blob kept")
			}
			sweepCheckStats(t, stats, SweepStats{Repositories: 3, BlobsTotal: 10, BlobsMarked: 9, BlobsDeleted: 1, FreedBytes: f.size(unref.Digest)})
		},
	},
}
