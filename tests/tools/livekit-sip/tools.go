//go:build tools

// Package tools pins livekit-sip (and, through go.sum, every dependency) for `make setup`,
// which builds it with `go build github.com/livekit/sip/cmd/livekit-sip` from this folder.
// `go install github.com/livekit/sip/cmd/livekit-sip@v1.8.0` does the same where the module
// proxy serves the version list.
package tools

import _ "github.com/livekit/sip/cmd/livekit-sip"
