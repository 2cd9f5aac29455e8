package projections

import (
	"encoding/binary"
	"errors"
	"slices"
	"time"

	"github.com/partnerd/partnerd/domain"
)

// Partner facts are stored compactly (length-prefixed strings, varints):
// recomputing a segment decodes every partner of a program, and JSON costs
// several times more per partner.

var errBadFacts = errors.New("segments: malformed stored partner facts")

func encodeFacts(f domain.PartnerFacts) string {
	b := make([]byte, 0, 128)
	str := func(s string) {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	for _, s := range []string{f.PartnerID, f.Name, f.ContractStage, f.ContractID, f.TemplateTerm, f.ProspectStage,
		f.Country, f.State, f.Size, f.BusinessModel, f.RelationshipType, f.AssignedTo, f.ProspectingSource} {
		str(s)
	}
	b = binary.AppendUvarint(b, uint64(len(f.Groups)))
	for _, g := range f.Groups {
		str(g)
	}
	if f.DateJoined != nil {
		b = append(b, 1)
		b = binary.AppendVarint(b, f.DateJoined.UnixNano())
	} else {
		b = append(b, 0)
	}
	if f.SocialReach != nil {
		b = append(b, 1)
		b = binary.AppendVarint(b, *f.SocialReach)
	} else {
		b = append(b, 0)
	}
	names := make([]string, 0, len(f.Custom))
	for k := range f.Custom {
		names = append(names, k)
	}
	slices.Sort(names)
	b = binary.AppendUvarint(b, uint64(len(names)))
	for _, k := range names {
		str(k)
		str(f.Custom[k])
	}
	return string(b)
}

// DecodePartnerFacts reads facts as the segments projection stores them.
func DecodePartnerFacts(s string) (domain.PartnerFacts, error) {
	var f domain.PartnerFacts
	i := 0
	bad := false
	uv := func() uint64 {
		if bad {
			return 0
		}
		v, n := binary.Uvarint([]byte(s[i:min(len(s), i+binary.MaxVarintLen64)]))
		if n <= 0 {
			bad = true
			return 0
		}
		i += n
		return v
	}
	sv := func() int64 {
		if bad {
			return 0
		}
		v, n := binary.Varint([]byte(s[i:min(len(s), i+binary.MaxVarintLen64)]))
		if n <= 0 {
			bad = true
			return 0
		}
		i += n
		return v
	}
	str := func() string {
		n := uv()
		if bad || n > uint64(len(s)-i) {
			bad = true
			return ""
		}
		v := s[i : i+int(n)]
		i += int(n)
		return v
	}
	flag := func() bool {
		if bad || i >= len(s) {
			bad = true
			return false
		}
		i++
		return s[i-1] == 1
	}
	for _, p := range []*string{&f.PartnerID, &f.Name, &f.ContractStage, &f.ContractID, &f.TemplateTerm, &f.ProspectStage,
		&f.Country, &f.State, &f.Size, &f.BusinessModel, &f.RelationshipType, &f.AssignedTo, &f.ProspectingSource} {
		*p = str()
	}
	if n := uv(); n > 0 && n <= uint64(len(s)) {
		f.Groups = make([]string, 0, n)
		for range n {
			f.Groups = append(f.Groups, str())
		}
	}
	if flag() {
		t := time.Unix(0, sv()).UTC()
		f.DateJoined = &t
	}
	if flag() {
		r := sv()
		f.SocialReach = &r
	}
	if n := uv(); n > 0 && n <= uint64(len(s)) {
		f.Custom = make(map[string]string, n)
		for range n {
			k := str()
			f.Custom[k] = str()
		}
	}
	if bad || i != len(s) {
		return domain.PartnerFacts{}, errBadFacts
	}
	return f, nil
}
