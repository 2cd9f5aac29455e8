package domain_test

import (
	"errors"
	"testing"

	"github.com/partnerd/partnerd/domain"
)

func TestProgramKeys(t *testing.T) {
	var p domain.Program
	if _, err := p.CreateProgram("Bad-ID", "", "k1", "h1", now); fields(err) == nil {
		t.Fatalf("program ID with '-' and capitals accepted: %v", err)
	}
	evs, err := p.CreateProgram("acme", "", "k1", "h1", now)
	if err != nil || len(evs) != 2 {
		t.Fatalf("create = %v, %v", evs, err)
	}
	for _, ev := range evs {
		p.Apply(ev)
	}
	if p.Name() != "acme" || !p.HasKeyHash("h1") {
		t.Fatalf("program after create: name %q, key h1 %v", p.Name(), p.HasKeyHash("h1"))
	}
	if _, err := p.CreateProgram("acme", "", "k2", "h2", now); !errors.Is(err, domain.ErrAlreadyExists) {
		t.Fatalf("second create: %v", err)
	}
	evs, _ = p.RevokeKey("k1", now)
	p.Apply(evs[0])
	if p.HasKeyHash("h1") {
		t.Fatal("revoked key still live")
	}
	if _, err := p.RevokeKey("k1", now); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("revoking twice: %v", err)
	}
}

func TestStreamNamesNeverCollideAcrossPrograms(t *testing.T) {
	// Program IDs cannot hold '-', so the program part of a stream name is
	// unambiguous even when partner IDs contain '-'.
	if domain.ValidProgramID("a-b") {
		t.Fatal("program ID with '-' accepted")
	}
	if domain.PartnerStream("a", "b-c") == domain.PartnerStream("ab", "c") {
		t.Fatal("streams collide")
	}
	if domain.Category(domain.PartnerStream("acme", "x-1")) != domain.CategoryPartner {
		t.Fatal("category of a partner stream")
	}
}
