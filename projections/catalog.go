package projections

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/partnerd/partnerd/domain"
)

// Catalog keeps each program's template terms and groups, and the indexes
// the archival and deletion processes use to find partners:
//
//	termdoc:<id>            hash   doc (TemplateTermView JSON)
//	terms                   zset   every template term ID, score 0 (lexical order)
//	groupdoc:<id>           hash   doc (GroupView JSON); gone once deleted
//	groups                  zset   every live group ID, score 0
//	term:<id>:partners      set    partners whose open contract or scheduled switch uses the term
//	group:<id>:partners     set    partners in the group (kept after a deletion until they left)
//	pterm:<partner>         hash   current, switch: the terms that put the partner in term:… sets
//
// Documents and indexes live under different first words, so IDs holding
// ':' cannot make two keys meet.
type Catalog struct{}

// Name implements Projection.
func (Catalog) Name() string { return "catalog" }

// Topics implements Projection.
func (Catalog) Topics() []string {
	return []string{"partnerd.template-terms", "partnerd.groups", "partnerd.partners"}
}

// Tag implements Projection: one program's keys share a slot.
func (Catalog) Tag(e Event) string { return e.Program }

// Sequential implements Sequential (LogOrdered projections are).
func (Catalog) Sequential() bool { return true }

// LogOrdered implements LogOrdered. The archival and deletion processes
// read the term:… and group:… sets once the catalog has applied the log
// up to their own write (its LogPosKey), not only their term's or group's
// stream: a partner that moved onto the term just before the archival,
// and whose own re-check ran just before it too, is then in the set. With
// events applied as they come in from the bus partitions, the set could
// lack that partner when the process read it, and neither side archived
// its contract.
func (Catalog) LogOrdered() bool { return true }

// CatalogLayout is the catalog's key layout: 2 added the generation's log
// position (LogPosKey); a generation of layout 1 is rebuilt when partnerd
// starts.
const CatalogLayout = 2

// Layout implements Layouted.
func (Catalog) Layout() int { return CatalogLayout }

// TemplateTermView is a template term as the API shows it.
type TemplateTermView struct {
	ID          string     `json:"id"`
	Version     uint64     `json:"version"`
	Name        string     `json:"name"`
	Description string     `json:"description"`
	Archived    bool       `json:"archived"`
	ArchivedAt  *time.Time `json:"archived_at"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
}

// TermViewOf renders a template term state as the API shows it.
func TermViewOf(s domain.TemplateTermState, version uint64) TemplateTermView {
	return TemplateTermView{ID: s.ID, Version: version, Name: s.Name, Description: s.Description,
		Archived: s.Archived, ArchivedAt: s.ArchivedAt, CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt}
}

// GroupView is a group as the API shows it.
type GroupView struct {
	ID        string    `json:"id"`
	Version   uint64    `json:"version"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// GroupViewOf renders a group state as the API shows it.
func GroupViewOf(s domain.GroupState, version uint64) GroupView {
	return GroupView{ID: s.ID, Version: version, Name: s.Name, CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt}
}

// partnerTerms are the terms a partner is indexed under.
type partnerTerms struct{ current, sw string }

func (t partnerTerms) set() []string {
	var out []string
	for _, id := range []string{t.current, t.sw} {
		if id != "" && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

// Plan implements Projection.
func (Catalog) Plan(ctx context.Context, rd redis.Cmdable, b *Batch) error {
	// 1. Read what the batch's events change: term docs being updated and
	// the partners' indexed terms.
	pipe := rd.Pipeline()
	docs := map[string]*redis.StringCmd{}
	pterms := map[string]*redis.SliceCmd{}
	for _, e := range b.Events {
		ks := b.Keys(e.Program)
		switch {
		case e.Type == domain.TypeTemplateTermUpdated || e.Type == domain.TypeTemplateTermArchived:
			if docs[e.Stream] == nil {
				docs[e.Stream] = pipe.HGet(ctx, ks.Key("termdoc", idOf(e, domain.CategoryTemplateTerm)), "doc")
			}
		case e.Type == domain.TypeGroupRenamed:
			if docs[e.Stream] == nil {
				docs[e.Stream] = pipe.HGet(ctx, ks.Key("groupdoc", idOf(e, domain.CategoryGroup)), "doc")
			}
		case strings.HasPrefix(e.Type, "partner.contract_") || e.Type == domain.TypePartnerDeactivated:
			if pterms[e.Stream] == nil {
				pterms[e.Stream] = pipe.HMGet(ctx, ks.Key("pterm", idOf(e, domain.CategoryPartner)), "current", "switch")
			}
		}
	}
	if len(docs)+len(pterms) > 0 {
		if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
			return fmt.Errorf("read catalog: %w", err)
		}
	}
	terms := map[string]*TemplateTermView{}
	groups := map[string]*GroupView{}
	partners := map[string]*partnerTerms{}
	// 2. Fold.
	for _, e := range b.Events {
		if pterms[e.Stream] == nil && !catalogFolds(e.Type) {
			continue // nothing to fold: spare the decode (most events are these)
		}
		ev, err := domain.DecodeEvent(e.Type, e.Schema, e.Data)
		if err != nil {
			return err
		}
		ks, w := b.Keys(e.Program), b.W(e.Program)
		switch ev := ev.(type) {
		case domain.TemplateTermCreated, domain.TemplateTermUpdated, domain.TemplateTermArchived:
			v, err := working(terms, docs, e)
			if err != nil {
				return err
			}
			switch ev := ev.(type) {
			case domain.TemplateTermCreated:
				*v = TemplateTermView{ID: ev.TemplateTermID, Name: ev.Name, Description: ev.Description,
					CreatedAt: ev.CreatedAt, UpdatedAt: ev.CreatedAt}
				w.ZAdd(ks.Key("terms"), 0, ev.TemplateTermID)
			case domain.TemplateTermUpdated:
				v.Name, v.Description, v.UpdatedAt = ev.Name, ev.Description, ev.UpdatedAt
			case domain.TemplateTermArchived:
				at := ev.ArchivedAt
				v.Archived, v.ArchivedAt, v.UpdatedAt = true, &at, at
			}
			v.Version = e.Version
			doc, _ := json.Marshal(v)
			w.HSet(ks.Key("termdoc", v.ID), "doc", string(doc))
		case domain.GroupCreated, domain.GroupRenamed:
			v, err := working(groups, docs, e)
			if err != nil {
				return err
			}
			switch ev := ev.(type) {
			case domain.GroupCreated:
				*v = GroupView{ID: ev.GroupID, Name: ev.Name, CreatedAt: ev.CreatedAt, UpdatedAt: ev.CreatedAt}
				w.ZAdd(ks.Key("groups"), 0, ev.GroupID)
			case domain.GroupRenamed:
				v.Name, v.UpdatedAt = ev.Name, ev.RenamedAt
			}
			v.Version = e.Version
			doc, _ := json.Marshal(v)
			w.HSet(ks.Key("groupdoc", v.ID), "doc", string(doc))
		case domain.GroupDeleted:
			w.Del(ks.Key("groupdoc", ev.GroupID))
			w.ZRem(ks.Key("groups"), ev.GroupID)
		case domain.PartnerGroupsChanged:
			for _, g := range ev.Added {
				w.SAdd(ks.Key("group", g, "partners"), ev.PartnerID)
			}
			for _, g := range ev.Removed {
				w.SRem(ks.Key("group", g, "partners"), ev.PartnerID)
			}
		default:
			if err := foldPartnerTerms(partners, pterms, e, ev, ks, w); err != nil {
				return err
			}
		}
	}
	return nil
}

// catalogFolds reports whether the catalog folds events of this type
// whatever else the batch holds: template term and group events, and a
// partner's group changes. Contract events (and deactivations) are folded
// through the partner's term read planned in step 1.
func catalogFolds(typ string) bool {
	return strings.HasPrefix(typ, "template_term.") || strings.HasPrefix(typ, domain.CategoryGroup+".") || typ == domain.TypePartnerGroupsChanged
}

// working returns the working view of e's stream, read from its doc once
// per batch.
func working[V any](views map[string]*V, docs map[string]*redis.StringCmd, e Event) (*V, error) {
	if v := views[e.Stream]; v != nil {
		return v, nil
	}
	v := new(V)
	views[e.Stream] = v
	if cmd := docs[e.Stream]; cmd != nil && cmd.Val() != "" {
		if err := json.Unmarshal([]byte(cmd.Val()), v); err != nil {
			return nil, fmt.Errorf("doc of %s: %w", e.Stream, err)
		}
	}
	return v, nil
}

// foldPartnerTerms moves a partner between term:<id>:partners sets as its
// contract events put it on or take it off template terms.
func foldPartnerTerms(partners map[string]*partnerTerms, reads map[string]*redis.SliceCmd, e Event, ev domain.Event, ks Keyspace, w *Writes) error {
	cmd := reads[e.Stream]
	if cmd == nil {
		return nil // not a contract event
	}
	pt := partners[e.Stream]
	if pt == nil {
		pt = &partnerTerms{}
		vals := cmd.Val()
		if len(vals) == 2 {
			pt.current, _ = vals[0].(string)
			pt.sw, _ = vals[1].(string)
		}
		partners[e.Stream] = pt
	}
	old := *pt
	switch ev := ev.(type) {
	case domain.ContractProposed:
		pt.current, pt.sw = ev.TemplateTermID, ""
	case domain.ContractCountered:
		pt.current = ev.TemplateTermID
	case domain.ContractAccepted:
		pt.current = ev.TemplateTermID
	case domain.ContractStarted:
		pt.current = ev.TemplateTermID
	case domain.ContractSwitched:
		pt.current, pt.sw = ev.TemplateTermID, ""
	case domain.ContractSwitchScheduled:
		pt.sw = ev.TemplateTermID
	case domain.ContractScheduleReverted:
		if ev.Schedule == domain.ScheduleSwitch {
			pt.sw = ""
		}
	case domain.ContractDeclined, domain.ContractRetracted, domain.ContractProposalExpired,
		domain.ContractExpired, domain.ContractCancelled, domain.ContractArchived:
		pt.current, pt.sw = "", ""
	case domain.PartnerDeactivated:
		if ev.Stage != "" {
			pt.current, pt.sw = "", ""
		}
	}
	if *pt == old {
		return nil
	}
	before, after := old.set(), pt.set()
	id := idOf(e, domain.CategoryPartner)
	for _, t := range before {
		if !slices.Contains(after, t) {
			w.SRem(ks.Key("term", t, "partners"), id)
		}
	}
	for _, t := range after {
		if !slices.Contains(before, t) {
			w.SAdd(ks.Key("term", t, "partners"), id)
		}
	}
	if len(after) == 0 {
		w.Del(ks.Key("pterm", id))
	} else {
		w.HSet(ks.Key("pterm", id), "current", pt.current, "switch", pt.sw)
	}
	return nil
}

// idOf extracts the ID from a stream "<category>-<program>-<id>".
func idOf(e Event, category string) string {
	return strings.TrimPrefix(e.Stream, category+"-"+e.Program+"-")
}
