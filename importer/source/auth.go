package source

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
)

// fileKeychain serves credentials from one docker config file's "auths"
// section, keyed by registry host. The default keychain cannot be pointed
// at a file without changing $DOCKER_CONFIG for the whole process, hence
// this small reader. Credential helpers (credsStore, credHelpers) are not
// consulted for an explicit file.
type fileKeychain map[string]authn.AuthConfig

// KeychainFromFile resolves credentials from the "auths" of a docker
// config file, for sources and for the registry an import writes to.
func KeychainFromFile(file string) (authn.Keychain, error) { return loadAuthFile(file) }

func loadAuthFile(file string) (fileKeychain, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("auth file: %w", err)
	}
	var cf struct {
		Auths map[string]authn.AuthConfig `json:"auths"`
	}
	if err := json.Unmarshal(data, &cf); err != nil {
		return nil, fmt.Errorf("auth file %s: %w", file, err)
	}
	kc := fileKeychain{}
	for key, cfg := range cf.Auths {
		kc[authHost(key)] = cfg
	}
	return kc, nil
}

// authHost reduces an "auths" key to a registry host: docker writes plain
// hosts, but old files use URLs like https://index.docker.io/v1/.
func authHost(key string) string {
	key = strings.TrimPrefix(strings.TrimPrefix(key, "https://"), "http://")
	host, _, _ := strings.Cut(key, "/")
	return host
}

// Resolve implements authn.Keychain; an unknown registry gets anonymous
// access, as with docker itself.
func (kc fileKeychain) Resolve(res authn.Resource) (authn.Authenticator, error) {
	host := res.RegistryStr()
	cfg, ok := kc[host]
	if !ok && host == "index.docker.io" {
		cfg, ok = kc["docker.io"]
	}
	if !ok {
		return authn.Anonymous, nil
	}
	return authn.FromConfig(cfg), nil
}
