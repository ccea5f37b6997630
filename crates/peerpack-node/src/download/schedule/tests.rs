//! The scheduler's decisions, asserted exactly: no sockets, no runtime, time passed by hand.

use super::*;

/// (provider, piece) of each request, in order.
fn asked(requests: &[Request]) -> Vec<(usize, u64)> {
    requests.iter().map(|r| (r.provider, r.piece)).collect()
}

/// The request for `piece` of `provider` among `requests`.
fn find(requests: &[Request], provider: usize, piece: u64) -> Ticket {
    requests
        .iter()
        .find(|r| r.provider == provider && r.piece == piece)
        .map(|r| r.ticket)
        .expect("no such request")
}

/// Deliver a good copy of the piece asked for with `ticket`.
fn deliver(s: &mut Scheduler, ticket: Ticket) -> Verdict {
    assert_eq!(s.arrived(ticket), Arrival::Verify);
    s.verified(ticket, true)
}

fn range(provider: usize, pieces: std::ops::Range<u64>) -> Vec<(usize, u64)> {
    pieces.map(|p| (provider, p)).collect()
}

#[test]
fn better_scored_providers_get_pieces_first() {
    let now = Instant::now();
    let mut s = Scheduler::new(100, 3);
    let first = s.next_requests(now);
    let mut want = range(0, 0..8);
    want.extend(range(1, 8..16));
    want.extend(range(2, 16..24));
    assert_eq!(asked(&first), want);
    // Provider 2 frees a slot first, then provider 0: the next piece still goes to 0.
    assert_eq!(deliver(&mut s, find(&first, 2, 16)), Verdict::New);
    assert_eq!(deliver(&mut s, find(&first, 0, 0)), Verdict::New);
    assert_eq!(asked(&s.next_requests(now)), vec![(0, 24), (2, 25)]);
}

#[test]
fn never_more_than_window_per_provider_nor_max_in_flight_per_download() {
    let now = Instant::now();
    let mut one = Scheduler::new(20, 1);
    assert_eq!(asked(&one.next_requests(now)), range(0, 0..8));
    assert!(one.next_requests(now).is_empty(), "the window is full");

    let mut s = Scheduler::new(100, 5);
    let first = s.next_requests(now);
    let mut want = Vec::new();
    for p in 0..4 {
        want.extend(range(p, p as u64 * 8..p as u64 * 8 + 8));
    }
    assert_eq!(asked(&first), want, "32 in flight; provider 4 waits");
    assert_eq!(s.in_flight(), MAX_IN_FLIGHT);
    // A piece that arrived frees its provider's slot, but being checked it still counts.
    let t = find(&first, 2, 16);
    assert_eq!(s.arrived(t), Arrival::Verify);
    assert!(s.next_requests(now).is_empty());
    assert_eq!(s.verified(t, true), Verdict::New);
    assert_eq!(asked(&s.next_requests(now)), vec![(2, 32)]);
}

/// Deliver a good copy of every piece asked for and not answered yet, but `slow`.
fn deliver_all_but(s: &mut Scheduler, slow: u64) {
    let tickets: Vec<Ticket> = s
        .requests
        .iter()
        .filter(|(_, r)| r.piece != slow && matches!(r.phase, Phase::Asked(_)))
        .map(|(t, _)| *t)
        .collect();
    for t in tickets {
        assert_eq!(deliver(s, t), Verdict::New);
    }
}

#[test]
fn a_stalled_piece_is_asked_again_and_moves_on_when_the_slow_provider_is_dropped() {
    let t0 = Instant::now();
    let mut s = Scheduler::new(100, 2);
    let first = s.next_requests(t0);
    deliver_all_but(&mut s, 3);
    assert_eq!(s.next_deadline(), Some(t0 + STALL));
    assert!(s.expire(t0 + STALL - Duration::from_millis(1)).is_empty());

    let slow = find(&first, 0, 3);
    let mut at = t0 + STALL;
    let stalled = s.expire(at);
    assert_eq!(
        stalled,
        vec![Stalled {
            request: Request {
                ticket: slow,
                provider: 0,
                piece: 3
            },
            strike: Strike::Counted
        }]
    );
    // A late answer to the stalled request changes nothing.
    assert_eq!(s.arrived(slow), Arrival::Discard);
    assert_eq!(
        s.failed(slow, Fault::Failed("late".into())),
        Strike::Ignored
    );

    // The piece goes back to the front of the queue, so to the best provider with room:
    // the slow one itself, until it has stalled MAX_FAILURES times.
    let mut strikes = vec![Strike::Counted];
    for _ in 1..MAX_FAILURES {
        assert_eq!(asked(&s.next_requests(at)).first(), Some(&(0, 3)));
        deliver_all_but(&mut s, 3);
        at += STALL;
        strikes.extend(s.expire(at).into_iter().map(|st| st.strike));
    }
    assert_eq!(
        strikes,
        vec![
            Strike::Counted,
            Strike::Counted,
            Strike::Dropped(no_answer())
        ]
    );
    assert_eq!(s.drop_reason(0), Some("no answer within 20 s"));
    let again = s.next_requests(at);
    assert_eq!(asked(&again).first(), Some(&(1, 3)));
    assert!(again.iter().all(|r| r.provider == 1));
    assert_eq!(deliver(&mut s, again[0].ticket), Verdict::New);
    assert!(s.has(3));
}

#[test]
fn a_failing_provider_is_dropped_after_max_failures() {
    let now = Instant::now();
    let mut s = Scheduler::new(40, 2);
    let first = s.next_requests(now);
    let busy = || Fault::Failed("busy".into());
    assert_eq!(s.failed(find(&first, 0, 0), busy()), Strike::Counted);
    assert_eq!(asked(&s.next_requests(now)), vec![(0, 0)]);
    assert_eq!(s.failed(find(&first, 0, 1), busy()), Strike::Counted);
    assert_eq!(asked(&s.next_requests(now)), vec![(0, 1)]);
    assert_eq!(s.drop_reason(0), None);
    assert_eq!(
        s.failed(find(&first, 0, 2), Fault::Failed("reset".into())),
        Strike::Dropped("reset".into())
    );
    assert_eq!(s.drop_reason(0), Some("reset"));
    assert!(s.next_requests(now).is_empty(), "provider 1 is full");
    // Its piece goes to the next provider with room, before the rest of the queue.
    assert_eq!(deliver(&mut s, find(&first, 1, 8)), Verdict::New);
    assert_eq!(asked(&s.next_requests(now)), vec![(1, 2)]);
    // The dropped provider's other requests: what they bring is discarded and their
    // failures no longer count; their pieces are queued again.
    assert_eq!(s.arrived(find(&first, 0, 3)), Arrival::Discard);
    assert_eq!(s.failed(find(&first, 0, 4), busy()), Strike::Ignored);
    assert_eq!(deliver(&mut s, find(&first, 1, 9)), Verdict::New);
    assert_eq!(asked(&s.next_requests(now)), vec![(1, 4)]);
    assert_eq!(deliver(&mut s, find(&first, 1, 10)), Verdict::New);
    assert_eq!(asked(&s.next_requests(now)), vec![(1, 3)]);
}

#[test]
fn a_lying_provider_is_dropped_at_once_and_its_pieces_requeued() {
    let now = Instant::now();
    let mut s = Scheduler::new(40, 2);
    let first = s.next_requests(now);
    // Piece 2 arrived before the lie was found: its check still counts.
    assert_eq!(s.arrived(find(&first, 0, 2)), Arrival::Verify);
    assert_eq!(s.arrived(find(&first, 0, 0)), Arrival::Verify);
    assert_eq!(s.verified(find(&first, 0, 0), false), Verdict::Bad);
    assert_eq!(s.drop_reason(0), Some(BAD_PIECE));
    assert_eq!(s.verified(find(&first, 0, 2), true), Verdict::New);
    assert!(s.next_requests(now).is_empty(), "provider 1 is full");
    assert_eq!(deliver(&mut s, find(&first, 1, 8)), Verdict::New);
    assert_eq!(asked(&s.next_requests(now)), vec![(1, 0)]);
    assert_eq!(s.arrived(find(&first, 0, 1)), Arrival::Discard);
    assert_eq!(deliver(&mut s, find(&first, 1, 9)), Verdict::New);
    assert_eq!(asked(&s.next_requests(now)), vec![(1, 1)]);

    // Answering with the wrong range is a lie too.
    let mut s = Scheduler::new(4, 2);
    let first = s.next_requests(now);
    let what = "answered with another range or size";
    assert_eq!(
        s.failed(find(&first, 0, 0), Fault::Bad(what)),
        Strike::Dropped(what.into())
    );
    // Piece 0 is queued again; 1..4, still asked of the dropped provider, are end game.
    assert_eq!(asked(&s.next_requests(now)), range(1, 0..4));
}

#[test]
fn a_vanishing_provider_is_dropped_and_its_pieces_go_elsewhere() {
    let now = Instant::now();
    // It no longer holds the archive: dropped at the first answer.
    let mut s = Scheduler::new(40, 2);
    let first = s.next_requests(now);
    assert_eq!(
        s.failed(find(&first, 0, 5), Fault::Gone),
        Strike::Dropped(GONE.into())
    );
    assert_eq!(deliver(&mut s, find(&first, 1, 8)), Verdict::New);
    assert_eq!(asked(&s.next_requests(now)), vec![(1, 5)]);

    // It disconnected: every request fails, the first MAX_FAILURES count.
    let mut s = Scheduler::new(40, 2);
    let first = s.next_requests(now);
    let strikes: Vec<Strike> = first[..8]
        .iter()
        .map(|r| s.failed(r.ticket, Fault::Failed("connection closed".into())))
        .collect();
    let mut want = vec![Strike::Counted, Strike::Counted];
    want.push(Strike::Dropped("connection closed".into()));
    want.extend(std::iter::repeat_n(Strike::Ignored, 5));
    assert_eq!(strikes, want);
    for p in 8..11 {
        assert_eq!(deliver(&mut s, find(&first, 1, p)), Verdict::New);
    }
    assert_eq!(
        asked(&s.next_requests(now)),
        vec![(1, 7), (1, 6), (1, 5)],
        "its pieces come first, the last failed at the front"
    );
}

#[test]
fn with_every_provider_dropped_the_download_stops_naming_the_missing_pieces() {
    let now = Instant::now();
    let mut s = Scheduler::new(4, 2);
    s.resume(&[false, true, false, false]);
    let first = s.next_requests(now);
    assert_eq!(asked(&first), vec![(0, 0), (0, 2), (0, 3)]);
    assert_eq!(deliver(&mut s, first[0].ticket), Verdict::New);
    assert_eq!(
        s.failed(first[1].ticket, Fault::Gone),
        Strike::Dropped(GONE.into())
    );
    assert_eq!(s.status(), Status::Running);
    // Piece 2 is queued; piece 3, still asked of the dropped provider, is its end game.
    let second = s.next_requests(now);
    assert_eq!(asked(&second), vec![(1, 2), (1, 3)]);
    assert_eq!(s.failed(first[2].ticket, Fault::Gone), Strike::Ignored);
    assert_eq!(s.arrived(second[0].ticket), Arrival::Verify);
    assert_eq!(s.verified(second[0].ticket, false), Verdict::Bad);
    assert_eq!(s.status(), Status::Running, "a request is still out");
    assert!(s.next_requests(now).is_empty());
    assert_eq!(s.arrived(second[1].ticket), Arrival::Discard);
    assert_eq!(
        s.status(),
        Status::Stopped {
            missing: vec![2, 3]
        }
    );
    assert_eq!(s.drop_reason(0), Some(GONE));
    assert_eq!(s.drop_reason(1), Some(BAD_PIECE));
    assert!(s.next_requests(now).is_empty());
}

#[test]
fn resumed_pieces_are_never_requested() {
    let now = Instant::now();
    let mut s = Scheduler::new(6, 1);
    s.resume(&[true, false, true, true, false, false]);
    assert_eq!(s.missing(), vec![1, 4, 5]);
    assert!(s.has(0) && !s.has(1));
    let first = s.next_requests(now);
    assert_eq!(asked(&first), vec![(0, 1), (0, 4), (0, 5)]);
    for r in &first {
        assert_eq!(s.status(), Status::Running);
        assert_eq!(deliver(&mut s, r.ticket), Verdict::New);
    }
    assert_eq!(s.status(), Status::Complete);

    let mut whole = Scheduler::new(3, 1);
    whole.resume(&[true; 3]);
    assert_eq!(whole.status(), Status::Complete);
    assert!(whole.next_requests(now).is_empty());
}

#[test]
fn end_game_asks_an_idle_provider_too_and_the_first_good_copy_wins() {
    let now = Instant::now();
    let mut s = Scheduler::new(16, 2);
    let first = s.next_requests(now);
    for p in 8..16 {
        assert_eq!(deliver(&mut s, find(&first, 1, p)), Verdict::New);
    }
    // Nothing queued; provider 0 is full with 0..8: provider 1 asks for each of them too,
    // once.
    let copies = s.next_requests(now);
    assert_eq!(asked(&copies), range(1, 0..8));
    assert!(s.next_requests(now).is_empty());

    // Piece 0 from provider 0 first: provider 1's copy is thrown away.
    assert_eq!(deliver(&mut s, find(&first, 0, 0)), Verdict::New);
    assert_eq!(s.arrived(find(&copies, 1, 0)), Arrival::Discard);
    // Both copies of piece 1 arrive before either is checked: the first check wins.
    assert_eq!(s.arrived(find(&first, 0, 1)), Arrival::Verify);
    assert_eq!(s.arrived(find(&copies, 1, 1)), Arrival::Verify);
    assert_eq!(s.verified(find(&copies, 1, 1), true), Verdict::New);
    assert_eq!(s.verified(find(&first, 0, 1), true), Verdict::Duplicate);
    // No third copy of anything.
    assert!(s.next_requests(now).is_empty());
    for p in 2..8 {
        assert_eq!(deliver(&mut s, find(&copies, 1, p)), Verdict::New);
        assert_eq!(s.arrived(find(&first, 0, p)), Arrival::Discard);
    }
    assert_eq!(s.status(), Status::Complete);
    assert_eq!(s.in_flight(), 0);

    // With fewer pieces than slots, the end game starts with the first requests.
    let mut s = Scheduler::new(10, 3);
    let mut want = range(0, 0..8);
    want.extend(range(1, 8..10));
    want.extend(range(1, 0..6));
    want.extend(range(2, 6..10));
    assert_eq!(asked(&s.next_requests(now)), want);
}
