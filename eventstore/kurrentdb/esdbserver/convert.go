package esdbserver

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	api "github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"

	"github.com/partnerd/partnerd/eventstore"
)

// System metadata keys the client reads from every recorded event. The client
// calls log.Fatalf when "created" is missing or not an integer, so every
// event this server sends carries all three.
const (
	metaType        = "type"
	metaContentType = "content-type"
	metaCreated     = "created"
	contentTypeJSON = "application/json"
)

// ticks renders t as .NET ticks (100 ns) since the Unix epoch, the format of
// the "created" metadata. The zero time renders as "0" rather than overflow.
func ticks(t time.Time) string {
	if t.IsZero() {
		return "0"
	}
	return strconv.FormatInt(t.UnixNano()/100, 10)
}

// protoUUID encodes id in the form the reader asked for. An id that is not a
// UUID cannot be structured; it is sent as the nil UUID in that form.
func protoUUID(id string, asString bool) *shared.UUID {
	if asString {
		return &shared.UUID{Value: &shared.UUID_String_{String_: id}}
	}
	u, err := uuid.Parse(id)
	if err != nil {
		u = uuid.Nil
	}
	return &shared.UUID{Value: &shared.UUID_Structured_{Structured: &shared.UUID_Structured{
		MostSignificantBits:  int64(binary.BigEndian.Uint64(u[:8])),
		LeastSignificantBits: int64(binary.BigEndian.Uint64(u[8:])),
	}}}
}

// eventID decodes a proposed event's id into the canonical UUID string.
func eventID(id *shared.UUID) (string, error) {
	switch v := id.GetValue().(type) {
	case *shared.UUID_Structured_:
		var b [16]byte
		binary.BigEndian.PutUint64(b[:8], uint64(v.Structured.GetMostSignificantBits()))
		binary.BigEndian.PutUint64(b[8:], uint64(v.Structured.GetLeastSignificantBits()))
		return uuid.UUID(b).String(), nil
	case *shared.UUID_String_:
		u, err := uuid.Parse(v.String_)
		if err != nil {
			return "", fmt.Errorf("event id %q: %w", v.String_, err)
		}
		return u.String(), nil
	default:
		return "", fmt.Errorf("event without an id")
	}
}

// eventMessage wraps a stored event as a read or subscription message, with
// commit and prepare positions both set to the store's position.
func eventMessage(ev eventstore.RecordedEvent, uuidAsString bool) *api.ReadResp {
	pos := uint64(ev.Position)
	return &api.ReadResp{Content: &api.ReadResp_Event{Event: &api.ReadResp_ReadEvent{
		Event: &api.ReadResp_ReadEvent_RecordedEvent{
			Id:               protoUUID(ev.ID, uuidAsString),
			StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(ev.StreamID)},
			StreamRevision:   ev.Version,
			PreparePosition:  pos,
			CommitPosition:   pos,
			Metadata: map[string]string{
				metaType:        ev.Type,
				metaContentType: contentTypeJSON,
				metaCreated:     ticks(ev.RecordedAt),
			},
			CustomMetadata: ev.Metadata,
			Data:           ev.Data,
		},
		Position: &api.ReadResp_ReadEvent_CommitPosition{CommitPosition: pos},
	}}}
}

// notFoundMessage is the read reply for a stream with no events.
func notFoundMessage(stream string) *api.ReadResp {
	return &api.ReadResp{Content: &api.ReadResp_StreamNotFound_{StreamNotFound: &api.ReadResp_StreamNotFound{
		StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(stream)},
	}}}
}

// confirmationMessage must be the first message of every subscription: the
// client refuses a subscription that starts with anything else.
func confirmationMessage() *api.ReadResp {
	return &api.ReadResp{Content: &api.ReadResp_Confirmation{Confirmation: &api.ReadResp_SubscriptionConfirmation{
		SubscriptionId: uuid.NewString(),
	}}}
}
