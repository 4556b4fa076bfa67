// Package gateway is Tsubame's front door: it turns HTTP requests into
// lightweight processes and their finished processes back into HTTP
// responses.
//
// A Gateway serves HTTP/1.1, HTTP/2 (over TLS) and HTTP/3 (over QUIC, same
// port number on UDP). Each request that matches a route of the TOML route
// table becomes an LP whose root entry targets the route's component and kind,
// with an input built from the request as the route's input mode says
// (docs/gateway.md). The gateway is the LP's origin: it migrates the LP to a
// node chosen by the scheduler among the live holders of the component, and
// the node that finishes the LP migrates it back. A request whose LP does not
// come back within the attempt timeout is resent as a new attempt of the same
// LP; the first reply wins and later ones are dropped.
//
// A gateway joins cluster membership as a member that holds no components.
// It never runs a component and keeps no request state beyond the requests
// it is currently answering.
package gateway
