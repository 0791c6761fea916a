//go:build race

package main

// raceBuild: the tests run with the race detector (go test -race), and
// TestPipelineRaces builds hooktrace with it too.
const raceBuild = true
