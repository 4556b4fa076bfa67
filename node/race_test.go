//go:build race

package node

// raceEnabled: the race detector slows wazero's compiler about tenfold, so
// tests that compile Go guests skip under it (the rest cover the races).
const raceEnabled = true
