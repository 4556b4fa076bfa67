// Package mesh is the plumbing that nodes and gateways share: the QUIC
// transport that moves LPs (transport), membership and load sharing
// (cluster), the policies that pick a holder (sched), the dispatcher that
// picks, sends and re-picks on failure (dispatch) and the cluster
// certificate authority (pki). Nothing under mesh runs a component or
// serves HTTP; node and gateway build on it, never the other way round.
package mesh
