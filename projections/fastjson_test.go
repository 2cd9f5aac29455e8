package projections

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	gojson "github.com/goccy/go-json"

	"github.com/partnerd/partnerd/domain"
)

// Events and stored partner states are decoded, and partner documents
// written, with goccy/go-json (faster than encoding/json): it must decode
// what encoding/json wrote to the same values and marshal must write the
// bytes encoding/json writes (read models are compared key by key, replayed
// idempotent answers and clients see them), also for the awkward strings:
// HTML characters, U+2028, invalid UTF-8, control bytes, quotes, non-ASCII.
// Custom field names are valid (domain.ValidEntityID) in every other
// partner; in every third they are not, which goccy/go-json would order
// differently, so marshal must fall back.
func TestFastJSONWritesWhatEncodingJSONWrites(t *testing.T) {
	differs := 0
	names := []string{"a", "z", "Z9", "survey.q1", "x:y", "a-b", "a_b", "A", "0"}
	rng := rand.New(rand.NewPCG(11, 5))
	pieces := []string{"a", "<b>", "&amp;", "\u2028", "\u2029", "\xff\xfe", "\x00\x1f", `"q"`, `\`, "é", "日本", "😀", "/", " ", "\t"}
	str := func() string {
		s := ""
		for range rng.IntN(5) {
			s += pieces[rng.IntN(len(pieces))]
		}
		return s
	}
	at := func() time.Time {
		return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(rng.Int64N(1e17)))
	}
	ptime := func() *time.Time {
		if rng.IntN(2) == 0 {
			return nil
		}
		v := at()
		return &v
	}
	for i := range 300 {
		reach, moz, url := int64(rng.IntN(1e9)), rng.IntN(101), str()
		st := domain.PartnerState{PartnerID: str(), ProgramID: str(), ProspectStage: str(), CreatedAt: at(), UpdatedAt: at(),
			Profile: domain.Profile{Name: str(), URL: str(), Description: str(), Country: str(), MediaProperties: []string{str(), str()},
				SocialReach: &reach, MozDomainAuthority: &moz, Categories: []string{str()}, CustomFields: map[string]string{names[rng.IntN(len(names))]: str(), names[rng.IntN(len(names))]: str(), "z": str()},
				RelationshipType: str()},
			Personal:   domain.Personal{Email: str(), ContactNames: []string{str()}, Address: str()},
			DateJoined: ptime(), Groups: []string{str(), str()}, AssignedTo: str(),
			Settings: domain.Settings{Tracking: domain.TrackingSettings{PostbackURL: &url, TrackingPixel: i%2 == 0},
				ClientCost: domain.ClientCostSettings{Exceptions: []domain.CostException{{ActionTrackerID: str(), CostType: str()}}},
				Compliance: domain.ComplianceSettings{ReviewSchedule: str(), AuditRate: rng.Float64() * 100}},
			Links: []domain.AccountLink{{PartnerID: str(), Reason: str(), LinkedAt: at()}}}
		if i%3 == 0 {
			st.Profile.CustomFields[str()+"\u2029"] = str()
		}
		if i%3 > 0 {
			st.Contract = &domain.ContractState{ID: str(), TemplateTermID: str(), Stage: domain.StageJoined, StartDate: ptime(), EndDate: ptime(),
				ScheduledSwitch: &domain.ScheduledSwitch{TemplateTermID: str(), EffectiveAt: at()}, Reason: str(), ProposedAt: at(), JoinedAt: ptime()}
			st.ContractHistory = []domain.ContractState{*st.Contract}
		}
		for _, v := range []any{ViewOf(st, uint64(i)), st} {
			want, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := marshal(v, st); err != nil || string(got) != string(want) {
				t.Fatalf("marshal wrote\n%s (%v)\nencoding/json wrote\n%s", got, err, want)
			}
			if got, _ := gojson.Marshal(v); string(got) != string(want) {
				differs++
			}
			// Decoding: the same values back.
			a, b := reflect.New(reflect.TypeOf(v)), reflect.New(reflect.TypeOf(v))
			if err1, err2 := json.Unmarshal(want, a.Interface()), gojson.Unmarshal(want, b.Interface()); err1 != nil || err2 != nil || !reflect.DeepEqual(a.Interface(), b.Interface()) {
				t.Fatalf("decoded differently (%v, %v):\n%+v\n%+v", err1, err2, a.Elem(), b.Elem())
			}
		}
		// An event as stored decodes to the same value through DecodeEvent.
		ev := domain.PartnerProfileUpdated{PartnerID: st.PartnerID, ProgramID: st.ProgramID, Changed: []string{"name"}, Profile: st.Profile, Personal: st.Personal, UpdatedAt: st.UpdatedAt}
		data, _ := json.Marshal(ev)
		var want domain.PartnerProfileUpdated
		_ = json.Unmarshal(data, &want)
		got, err := domain.DecodeEvent(ev.EventType(), domain.SchemaOf(ev.EventType()), data)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("DecodeEvent = %+v, %v; encoding/json decodes %+v", got, err, want)
		}
	}
	if differs == 0 {
		t.Fatal("goccy/go-json wrote every document as encoding/json does, even with names to escape: the test no longer shows why marshal falls back")
	}
}
