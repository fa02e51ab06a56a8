package cnosdbtest

// Target is a CnosDB that a test writes to and reads back from: this
// package's Server, or a real CnosDB started by internal/cnosdbreal. Tests
// written against it run on both, so that the real server judges what the
// test server only imitates.
type Target interface {
	// URL is the base address, e.g. "http://127.0.0.1:8902".
	URL() string
	// Rows returns a table's rows sorted by time, then series; nil when
	// the table does not exist (or, on a real server, cannot be read now).
	// Empty tenant and db mean "cnosdb" and "public".
	Rows(tenant, db, measurement string) []Row
	// RowCount is the number of rows of a table, 0 when it does not exist.
	RowCount(tenant, db, measurement string) int
	// Measurements lists the tables of a database, sorted.
	Measurements(tenant, db string) []string
	// CreateDatabase creates a database; it reports false if it existed.
	CreateDatabase(tenant, db string) bool
	// Down makes the server unreachable, as a crash does: open
	// connections drop, new ones are refused. Up brings it back on the
	// same address with the data it had stored.
	Down()
	Up() error
	// Close stops the server for good.
	Close() error
}

var _ Target = (*Server)(nil)
