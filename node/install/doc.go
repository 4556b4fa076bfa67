// Package install is a node's hot install: the content-addressed module
// store and its manifest (what was installed or removed at run time, so a
// restarted node holds what it held), installs and removals on this node and
// by order on peers, module fetches from peers checked against their hash,
// the repair of modules the store lost, per-component statistics, and the
// engine wrapper that fetches an old version an entry resumes in
// (node/versions decides how long versions are kept).
//
// A Manager works through small interfaces to the node's parts (runtime,
// engine, membership, requests, run queue). It never serves HTTP (node/admin
// does), never decides an auto-install (node/autogrow does) and never runs a
// step on its own account.
package install
