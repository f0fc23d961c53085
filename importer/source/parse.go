package source

import (
	"fmt"
	"net/url"
	"strings"
)

// Parse picks the source for a SOURCE argument: a file path, "-"
// (Options.Stdin), an http:// or https:// URL, or
// docker://HOST/REPO[:TAG|@DIGEST]. It returns ErrDVCRSource for dvcr://
// sources, which the caller handles itself, and ErrUnsupportedScheme for any
// other scheme.
func Parse(spec string, opts Options) (Source, error) {
	if spec == "" {
		return nil, fmt.Errorf("empty source")
	}
	if spec == "-" {
		return newStdin(opts)
	}
	scheme, rest, ok := strings.Cut(spec, "://")
	if !ok {
		return newFile(spec), nil
	}
	switch strings.ToLower(scheme) {
	case "http", "https":
		return newHTTP(spec, opts)
	case "docker":
		return newDocker(rest, opts)
	case "dvcr":
		return nil, fmt.Errorf("%w: %s", ErrDVCRSource, spec)
	case "file":
		return parseFileURL(spec)
	}
	return nil, fmt.Errorf("%w %q in %q: use a file path, -, http://, https://, docker:// or dvcr://",
		ErrUnsupportedScheme, scheme, redactSpec(spec))
}

// parseFileURL accepts file:///path (and file://localhost/path) because
// people paste them from browsers.
func parseFileURL(spec string) (Source, error) {
	u, err := url.Parse(spec)
	if err != nil {
		return nil, fmt.Errorf("bad file URL %q: %w", spec, err)
	}
	if u.Host != "" && u.Host != "localhost" {
		return nil, fmt.Errorf("%w: file URL %q names a remote host", ErrUnsupportedScheme, spec)
	}
	return newFile(u.Path), nil
}

// redactSpec keeps credentials out of error messages about unparsable or
// unsupported URLs.
func redactSpec(spec string) string {
	u, err := url.Parse(spec)
	if err != nil || u.User == nil {
		if err != nil && strings.Contains(spec, "@") {
			return "(unparsable URL)"
		}
		return spec
	}
	u.User = nil
	return u.String()
}
