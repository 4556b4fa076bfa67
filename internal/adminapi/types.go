package adminapi

import "time"

// The JSON bodies of a node's admin API (docs/install.md), shared by the
// server (node/admin) and its client (`tsubame status`, `install`,
// `components`).

// Status is the body of GET /v1/status: this node and its view of every live
// member. `tsubame status` renders it.
type Status struct {
	Node string    `json:"node"`
	Time time.Time `json:"time"`
	// Members lists this node first, then the others by name.
	Members []MemberStatus `json:"members"`
	// Autogrow lists the auto-grow actions this node took, oldest first.
	Autogrow []AutogrowEvent `json:"autogrow,omitempty"`
	// Buckets lists the KV buckets of this node: declared ones and its
	// components' private ones.
	Buckets []BucketStatus `json:"buckets,omitempty"`
}

// MemberStatus is one member as the answering node sees it.
type MemberStatus struct {
	Name       string            `json:"name"`
	Self       bool              `json:"self,omitempty"`
	Gateway    bool              `json:"gateway,omitempty"`
	QUIC       string            `json:"quic"`
	Components []ComponentStatus `json:"components"`
	Load       float64           `json:"load"`
	Queue      int               `json:"queue"`
	Workers    int               `json:"workers"`
	InPerSec   float64           `json:"in_per_sec"`
	OutPerSec  float64           `json:"out_per_sec"`
	// ReportAgeMS is how old the member's last load report is; Fresh says
	// whether it is recent enough for the scheduler to pick the member.
	ReportAgeMS int64 `json:"report_age_ms"`
	Fresh       bool  `json:"fresh"`
	// Running and SentTo are only known for the answering node: steps
	// running now, and LPs it has sent to each peer since it started.
	Running int               `json:"running,omitempty"`
	SentTo  map[string]uint64 `json:"sent_to,omitempty"`
}

// ComponentStatus is a component and the short hash of its module, and, when
// the member says, how it got it: Source "config", "upload", "peer" or
// "auto" (auto-grow), and when.
type ComponentStatus struct {
	Name        string     `json:"name"`
	Hash        string     `json:"hash"`
	Source      string     `json:"source,omitempty"`
	Auto        bool       `json:"auto,omitempty"`
	InstalledAt *time.Time `json:"installed_at,omitempty"`
}

// ComponentInfo is one component a node holds, as GET /v1/components shows
// it.
type ComponentInfo struct {
	Name string `json:"name"`
	// Hash is the module's SHA-256; Version its first 12 hex digits.
	Hash    string `json:"hash"`
	Version string `json:"version"`
	Size    int    `json:"size"`
	// Source is how it got here: "config", "upload", "peer" or "auto".
	Source      string     `json:"source"`
	Auto        bool       `json:"auto,omitempty"`
	By          string     `json:"by,omitempty"`
	InstalledAt *time.Time `json:"installed_at,omitempty"`
	// Kinds counts the steps run here per request kind since the node
	// started (at most 32 kinds).
	Kinds map[string]uint64 `json:"kinds"`
	Steps uint64            `json:"steps"`
	// StepsPerSec and Load cover the last second: Load is the share of the
	// node's worker time its steps took (0 to 1).
	StepsPerSec float64    `json:"steps_per_sec"`
	Load        float64    `json:"load"`
	Queued      int        `json:"queued"`
	LastStep    *time.Time `json:"last_step,omitempty"`
}

// RetainedVersion is a module version kept although no component runs it
// here, for LPs whose continuations it saved.
type RetainedVersion struct {
	Hash      string    `json:"hash"`
	KeepUntil time.Time `json:"keep_until"`
	Queued    int       `json:"queued"` // LPs in the run queue that need it
}

// ComponentsReport is one node's answer: its components and retained
// versions.
type ComponentsReport struct {
	Node       string            `json:"node"`
	Components []ComponentInfo   `json:"components"`
	Retained   []RetainedVersion `json:"retained,omitempty"`
}

// ComponentsList is the body of GET /v1/components.
type ComponentsList struct {
	Nodes []ComponentsReport `json:"nodes"`
	// Errors names the nodes that did not answer (with ?all=1).
	Errors map[string]string `json:"errors,omitempty"`
}

// InstallResponse is the body of PUT and DELETE /v1/components/{name}.
type InstallResponse struct {
	Name    string          `json:"name"`
	Hash    string          `json:"hash,omitempty"`
	Size    int             `json:"size,omitempty"`
	Results []InstallResult `json:"results"`
}

// Error is every error body of the node's admin API.
type Error struct {
	Error string `json:"error"`
	// Rule names the validation rule a refused module broke.
	Rule string `json:"rule,omitempty"`
}

// AutogrowEvent is an auto-grow action, as /v1/status shows it: an install
// this node decided, or an idle auto-installed component it removed.
type AutogrowEvent struct {
	Action    string    `json:"action"` // "install" or "remove"
	Component string    `json:"component"`
	Node      string    `json:"node"` // where it was installed or removed
	At        time.Time `json:"at"`
	Millis    int64     `json:"ms"`
	Error     string    `json:"error,omitempty"`
}

// InstallResult is one node's outcome of an install or removal.
type InstallResult struct {
	Node        string `json:"node"`
	OK          bool   `json:"ok"`
	Error       string `json:"error,omitempty"`
	Hash        string `json:"hash,omitempty"`
	FetchedFrom string `json:"fetched_from,omitempty"`
	Millis      int64  `json:"ms"`
	Removed     bool   `json:"removed,omitempty"`
	// Absent: a removal found the component not held there, which is the
	// goal of a removal: OK, nothing done.
	Absent bool `json:"absent,omitempty"`
}
