package console

import (
	"embed"
	"io/fs"
	"net/http"
)

// assets are the page, its script and its styles: everything the browser
// loads, so the console works without any other network access.
//
//go:embed assets
var assets embed.FS

func assetHandler() http.Handler {
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	return http.FileServerFS(sub)
}
