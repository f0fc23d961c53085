package provisioning

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	"github.com/dvcr/dvcr/api/v1alpha2"
)

// specVersion is the spec an import is for: the generation the resource had
// when it was read and the digest of its spec.
//
// Two versions are the same spec when their digests are equal, whatever
// their generations. On a CRD with the status subresource the generation
// alone would tell; on one without it (the platform's CRDs may lack it),
// every status write moves the generation too, and a controller comparing
// generations takes its own writes for spec changes: it cancels and
// restarts its running import at each progress write, retries a failure at
// once instead of after the backoff, imports a Ready image again and
// reports that its spec changed.
type specVersion struct {
	gen    int64
	digest string
}

// versionOf is obj's spec version.
func versionOf(obj v1alpha2.Image) specVersion {
	data, err := json.Marshal(obj.ImageSpec())
	if err != nil {
		panic("provisioning: marshal of a known type failed: " + err.Error())
	}
	sum := sha256.Sum256(data)
	return specVersion{gen: obj.GetGeneration(), digest: hex.EncodeToString(sum[:16])}
}

// same tells whether v and o are the same spec.
func (v specVersion) same(o specVersion) bool { return v.digest == o.digest }

// observed is the generation a status written now about v observes: obj's
// current generation while its spec is still v's (a status write of ours may
// have moved the generation), else v's own, older one.
func (v specVersion) observed(obj v1alpha2.Image) int64 {
	if v.same(versionOf(obj)) {
		return obj.GetGeneration()
	}
	return v.gen
}
