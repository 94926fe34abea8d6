//go:build tools

// Package tools pins LiveKit's CLI `lk` (and, through go.sum, every dependency) for `make setup`,
// which builds it with `go build github.com/livekit/livekit-cli/v2/cmd/lk` from this folder: the
// independent peer of `callfleet sip` in tests/it/sip_cli.rs.
//
// go.mod raises github.com/livekit/protocol from the pseudo-version lk v2.18.2 names to
// v1.50.5-0.20260728075222-28e604c046c6, the one livekit-server v1.13.5 (the server under test)
// is built with: the module proxy here serves lk v2.18.2 but not its own protocol version.
package tools

import _ "github.com/livekit/livekit-cli/v2/cmd/lk"
