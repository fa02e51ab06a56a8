package kafka_consumer //nolint:revive,stylecheck // named after the Telegraf plugin it replaces

import (
	"fmt"
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

// parentOutputs reads the [[outputs.*]] tables of the parent's config,
// and what could not be read.
func parentOutputs(parent execd.Parent) ([]execd.Output, error) {
	files, err := parent.ConfigFiles()
	if err != nil {
		return nil, fmt.Errorf("reading Telegraf's command line: %w", err)
	}
	return execd.Outputs(files)
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

// adoptTelegrafBatch takes metric_batch_size and metric_buffer_limit from
// the [[outputs.execd]] table that runs telegraf-cnosdb, as Telegraf
// applies them: the input paces itself by that output's batches, and a
// metric_batch_size of its own that disagrees would stall the loop (too
// small: Telegraf drops its batch signals; too large: no batch ever
// fills). readErr says what of Telegraf's config could not be read.
func (k *KafkaConsumer) adoptTelegrafBatch(outputs []execd.Output, readErr error) {
	var found []execd.Output
	for _, o := range outputs {
		if isCompanion(o) {
			found = append(found, o)
		}
	}
	if len(found) == 0 {
		if k.windowDefaults.batch {
			why := ""
			if readErr != nil {
				why = fmt.Sprintf(" (some of it could not be read: %v)", readErr)
			}
			k.Log.Warnf("telegraf-cnosdb's [[outputs.execd]] table is not in Telegraf's config as read%s, a URL or a wrapper script maybe: assuming it gets Telegraf's default batches (metric_batch_size = %d); set metric_batch_size here to that table's (or the agent's) if it differs, or the loop stalls",
				why, k.MetricBatchSize)
		}
		return
	}
	if readErr != nil {
		k.Log.Debugf("reading Telegraf's config: %v", readErr)
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
	k.Log.Debugf("%s: metric_batch_size %d, metric_buffer_limit %d", o.Name(), o.BatchSize, o.BufferLimit)
}

// sizeWindows grows the windows left to their defaults with the batch:
// room for what sits inside Telegraf (insideFor) and for the output to
// hold markers beside it (newTracker's roomy: a batch and a chunk twice).
func (k *KafkaConsumer) sizeWindows(retriggers bool) {
	need := insideFor(k.MetricBatchSize, k.telegrafBuffer, retriggers) + 3*k.MetricBatchSize
	if k.windowDefaults.messages {
		k.MaxUndeliveredMessages = max(defaultMaxUndeliveredMessages, need)
	}
	if k.windowDefaults.metrics {
		k.MaxUndeliveredMetrics = max(defaultMaxUndeliveredMetrics, 2*need)
	}
}

// isCompanion tells telegraf-cnosdb's [[outputs.execd]] table by its
// command.
func isCompanion(o execd.Output) bool {
	return o.Kind == "execd" && len(o.Command) > 0 && filepath.Base(o.Command[0]) == "telegraf-cnosdb"
}
