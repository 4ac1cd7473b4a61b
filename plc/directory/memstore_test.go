package directory_test

import (
	"testing"

	"github.com/reservoir-atproto/reservoir/plc/directory"
	"github.com/reservoir-atproto/reservoir/plc/directory/storetest"
)

func TestMemStoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) directory.Store { return directory.NewMemStore() })
}
