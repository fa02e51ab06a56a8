// Package execd holds what both of our Telegraf execd children need and
// nothing more: loading the plugin's own config file the way Telegraf
// does, logging to stderr in the form Telegraf reads, and the process
// conventions (flags, version, stop signals, pipes, threads and memory) of
// an external plugin.
//
// It deliberately knows nothing of Kafka or CnosDB, so the two plugins
// never import each other.
package execd
