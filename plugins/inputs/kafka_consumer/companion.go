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
// rows; the input writes none. With one, it says which other outputs of
// the parent's config would receive checkpoints without a namedrop.
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
		return
	}
	k.warnUnfilteredOutputs(parent)
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

// warnUnfilteredOutputs names each output of the parent's config, other
// than telegraf-cnosdb, that checkpoints would reach.
func (k *KafkaConsumer) warnUnfilteredOutputs(parent execd.Parent) {
	files, err := parent.ConfigFiles()
	if err != nil {
		k.Log.Debugf("reading Telegraf's command line: %v", err)
		return
	}
	outputs, err := execd.Outputs(files)
	if err != nil {
		k.Log.Debugf("reading Telegraf's config for outputs that need namedrop: %v", err)
	}
	for _, o := range outputs {
		if isCompanion(o) || !o.Passes(delivery.Measurement) {
			continue
		}
		k.Log.Warnf("%s would store this input's checkpoints: add namedrop = [%q] to it", o.Name(), delivery.Measurement)
	}
}

// isCompanion tells telegraf-cnosdb's [[outputs.execd]] table by its
// command.
func isCompanion(o execd.Output) bool {
	return o.Kind == "execd" && len(o.Command) > 0 && filepath.Base(o.Command[0]) == "telegraf-cnosdb"
}
