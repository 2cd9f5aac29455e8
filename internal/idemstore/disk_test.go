package idemstore

import (
	"context"
	"testing"
	"time"
)

func TestDiskRecordsExpireAndOutliveTheProcess(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	d, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Unix(1_800_000_000, 0)
	d.now = func() time.Time { return clock }

	if won, err := d.Reserve(ctx, "k", "pending:a", time.Minute); err != nil || !won {
		t.Fatalf("first reserve = %v, %v", won, err)
	}
	if won, _ := d.Reserve(ctx, "k", "pending:b", time.Minute); won {
		t.Fatal("a second reserve of a held key won")
	}
	if v, found, _ := d.Get(ctx, "k"); !found || v != "pending:a" {
		t.Fatalf("get = %q %v", v, found)
	}
	// A reservation lapses with its TTL unless touched.
	clock = clock.Add(50 * time.Second)
	if err := d.Touch(ctx, "k", time.Minute); err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(50 * time.Second)
	if _, found, _ := d.Get(ctx, "k"); !found {
		t.Fatal("a touched reservation expired")
	}
	if err := d.Put(ctx, "k", "answer", time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := d.Put(ctx, "short", "x", time.Second); err != nil {
		t.Fatal(err)
	}
	if err := d.Put(ctx, "gone", "x", time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := d.Delete(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(2 * time.Second)
	if _, found, _ := d.Get(ctx, "short"); found {
		t.Fatal("an expired record is still found")
	}
	if won, _ := d.Reserve(ctx, "short", "pending:c", time.Minute); !won {
		t.Fatal("an expired record still holds its key")
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}

	// Reopened (a restart): the answer is there, the deleted one is not.
	d, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	d.now = func() time.Time { return clock }
	if v, found, _ := d.Get(ctx, "k"); !found || v != "answer" {
		t.Fatalf("after reopening get = %q %v", v, found)
	}
	if _, found, _ := d.Get(ctx, "gone"); found {
		t.Fatal("a deleted record came back")
	}
	// The sweep removes what expired, not what lives.
	clock = clock.Add(2 * time.Hour)
	d.Sweep()
	clock = clock.Add(-2 * time.Hour)
	if _, found, _ := d.Get(ctx, "k"); found {
		t.Fatal("the sweep kept an expired record")
	}
}
