package kafka_consumer //nolint:revive,stylecheck // named after the Telegraf plugin it replaces

import (
	"path/filepath"
	"slices"
	"time"

	"github.com/kafka-cnosdb/telegraf-execd/plugins/common/delivery"
	"github.com/kafka-cnosdb/telegraf-execd/plugins/common/execd"
)

// outputPackage is the main package of telegraf-cnosdb, as its
// executable's build information records it.
const outputPackage = "github.com/kafka-cnosdb/telegraf-execd/cmd/telegraf-cnosdb"

// companionWait is how long the input looks for telegraf-cnosdb among
// Telegraf's children. Telegraf starts its outputs before its inputs, so
// it is there at once unless it is being restarted.
const companionWait = 2 * time.Second

// chooseTracking settles delivery_tracking = "auto" before the first
// checkpoint: with no telegraf-cnosdb under the same Telegraf, nobody
// would acknowledge, and every other output would store checkpoints as
// rows; the input writes none.
func (k *KafkaConsumer) chooseTracking(parent execd.Parent) {
	if k.DeliveryTracking != trackingAuto {
		return
	}
	found, err := findCompanion(parent)
	if err != nil {
		k.Log.Debugf("delivery_tracking = \"auto\": cannot list Telegraf's children (%v): probing with checkpoints", err)
		return
	}
	if !found {
		k.Log.Warnf("delivery_tracking = \"auto\": telegraf-cnosdb does not run under this Telegraf (pid %d), so no checkpoints are written (nothing would acknowledge them, and other outputs would store them): offsets are committed once lines are written to Telegraf, as with \"off\". Set delivery_tracking = \"required\" if telegraf-cnosdb runs there in a way this cannot see (through a wrapper script), or \"off\" to skip this look",
			parent.PID)
		k.DeliveryTracking = trackingOff
	}
}

func findCompanion(parent execd.Parent) (bool, error) {
	deadline := time.Now().Add(companionWait)
	for {
		children, err := parent.Children()
		if err != nil {
			return false, err
		}
		if slices.ContainsFunc(children, func(c execd.Child) bool { return c.Package == outputPackage }) {
			return true, nil
		}
		if time.Now().After(deadline) {
			return false, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// parentOutputs reads the [[outputs.*]] tables of the parent's config;
// nil when it cannot be read.
func (k *KafkaConsumer) parentOutputs(parent execd.Parent) []execd.Output {
	files, err := parent.ConfigFiles()
	if err != nil {
		k.Log.Debugf("reading Telegraf's command line: %v", err)
		return nil
	}
	outputs, err := execd.Outputs(files)
	if err != nil {
		k.Log.Debugf("reading Telegraf's config: %v", err)
	}
	return outputs
}

// warnUnfilteredOutputs names each output of the parent's config, other
// than telegraf-cnosdb, that checkpoints would reach.
func (k *KafkaConsumer) warnUnfilteredOutputs(outputs []execd.Output) {
	for _, o := range outputs {
		if isCompanion(o) || !o.Passes(delivery.Measurement) {
			continue
		}
		k.Log.Warnf("%s would store this input's checkpoints: add namedrop = [%q] to it", o.Name(), delivery.Measurement)
	}
}

// windowBatches is how many of Telegraf's batches the default window
// holds: up to two inside Telegraf and room for the output to hold
// markers beside them (newTracker's roomy).
const windowBatches = 5

// adoptTelegrafBatch takes metric_batch_size and metric_buffer_limit from
// the [[outputs.execd]] table that runs telegraf-cnosdb, as Telegraf
// applies them: the input paces itself by that output's batches, and a
// metric_batch_size of its own that disagrees would stall the loop (too
// small: Telegraf drops its batch signals; too large: no batch ever
// fills). Windows left to their defaults grow to windowBatches batches.
func (k *KafkaConsumer) adoptTelegrafBatch(outputs []execd.Output) {
	var found []execd.Output
	for _, o := range outputs {
		if isCompanion(o) {
			found = append(found, o)
		}
	}
	if len(found) == 0 {
		if !k.windowDefaults.batch {
			return
		}
		k.Log.Debugf("telegraf-cnosdb's [[outputs.execd]] is not in Telegraf's config as read: assuming metric_batch_size = %d", k.MetricBatchSize)
		return
	}
	o := found[0]
	if len(found) > 1 {
		k.Log.Warnf("%d [[outputs.execd]] tables run telegraf-cnosdb; pacing by the first, %s (metric_batch_size = %d)", len(found), o.Name(), o.BatchSize)
	}
	if !k.windowDefaults.batch && k.MetricBatchSize != o.BatchSize {
		k.Log.Warnf("metric_batch_size = %d, but Telegraf writes %s in batches of %d: using %d (leave metric_batch_size unset to take it from Telegraf's config)",
			k.MetricBatchSize, o.Name(), o.BatchSize, o.BatchSize)
	}
	k.MetricBatchSize = o.BatchSize
	k.telegrafBuffer = o.BufferLimit
	if k.windowDefaults.messages {
		k.MaxUndeliveredMessages = max(defaultMaxUndeliveredMessages, windowBatches*k.MetricBatchSize)
	}
	if k.windowDefaults.metrics {
		k.MaxUndeliveredMetrics = max(defaultMaxUndeliveredMetrics, 2*windowBatches*k.MetricBatchSize)
	}
	k.Log.Debugf("%s: metric_batch_size %d, metric_buffer_limit %d; max_undelivered_messages %d, max_undelivered_metrics %d",
		o.Name(), o.BatchSize, o.BufferLimit, k.MaxUndeliveredMessages, k.MaxUndeliveredMetrics)
}

// isCompanion tells telegraf-cnosdb's [[outputs.execd]] table by its
// command.
func isCompanion(o execd.Output) bool {
	return o.Kind == "execd" && len(o.Command) > 0 && filepath.Base(o.Command[0]) == "telegraf-cnosdb"
}
