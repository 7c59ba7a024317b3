//! Bootstrap, replica-set change, checkpoint copy and legacy's "join later" through the
//! public Rust API.

use super::*;

/// `me` started with the new `Initialize` (no member set): it waits for a bootstrap.
fn start_for_bootstrap(dir: &Path, me: &Member) -> Node {
    let (heard, rx) = channel();
    let app = Summer { sum: 0, save_after: None, in_decree: false, heard, hidden: None };
    let replica = Replica::initialize_for_bootstrap(&config(dir), me.clone(), Version::V7, app).unwrap();
    Node { replica, heard: rx }
}

#[test]
fn a_replica_set_change_reaches_every_member_and_the_removed_one_stops_counting() {
    let (dir, nodes) = cluster("change");
    let p = primary(&nodes, None);
    expect(&nodes[p], "NotifyStatus(true)", |h| *h == Heard::Status(true));
    let all = nodes[p].replica.configuration().unwrap().1;
    let secondary = (p + 1) % 3;
    assert_eq!(
        nodes[secondary].replica.change_configuration(all.clone(), 5),
        Err((ResponseCode::NotPrimary, 5))
    );
    // Remove a secondary: the set's cookie travels with it, the call's cookie comes back here.
    let removed = (p + 2) % 3;
    let kept: Vec<Member> =
        all.members().iter().filter(|m| m.id != *nodes[removed].replica.id()).cloned().collect();
    let two = MemberSet::new(kept, bytes::Bytes::from_static(b"two")).unwrap();
    nodes[p].replica.change_configuration(two.clone(), 77).unwrap();
    expect(&nodes[p], "the change, with its cookie", |h| *h == Heard::ConfigurationChanged(Some(77)));
    for (i, node) in nodes.iter().enumerate() {
        if i != p {
            expect(node, "the change, without a cookie", |h| *h == Heard::ConfigurationChanged(None));
        }
        let (number, members) = node.replica.configuration().unwrap();
        assert_eq!((number, members), (2, two.clone()), "every replica of the old set moved on");
        // Legacy's record that configuration 1 ended, for a legacy replica taking over.
        let defunct = dir.join(node.replica.id().as_str()).join("defunct.txt");
        assert_eq!(std::fs::read(defunct).unwrap(), 1u32.to_le_bytes());
    }
    // With the other member paused, the removed one (running) makes no quorum: nothing
    // commits until the member is back.
    let p = primary(&nodes, Some(removed));
    let secondary = 3 - p - removed;
    nodes[secondary].replica.pause();
    nodes[p].replica.replicate_request(&value(3), 3).unwrap();
    let quiet_until = Instant::now() + Duration::from_millis(1500);
    while let Ok(heard) = nodes[p].heard.recv_timeout(quiet_until.saturating_duration_since(Instant::now())) {
        assert!(!matches!(heard, Heard::Executed { .. }), "committed without a quorum of the new set");
    }
    nodes[secondary].replica.resume();
    expect(&nodes[p], "value 3", |h| matches!(h, Heard::Executed { value: 3, .. }));
    drop(nodes);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bootstrap_by_call_and_by_message_then_restart_bootstrapped() {
    let dir = temp_dir("bootstrap");
    let set = members();
    let start_new = |i: usize| start_for_bootstrap(&dir, &set.members()[i]);
    let (heard, _rx) = channel();
    let app = Summer { sum: 0, save_after: None, in_decree: false, heard, hidden: None };
    let old = Replica::initialize_for_bootstrap(&config(&dir), set.members()[0].clone(), Version::V3, app);
    assert!(old.is_err_and(|e| e.to_string().contains("version 4")));
    let mut nodes: Vec<Node> = (0..3).map(start_new).collect();
    for node in &nodes {
        assert_eq!(node.replica.configuration(), Some((0, MemberSet::default())));
    }
    let without_me = MemberSet::new(set.members()[1..].to_vec(), Default::default()).unwrap();
    assert_eq!(
        nodes[0].replica.bootstrap(&without_me, Duration::from_secs(1)),
        ResponseCode::BootstrapFailed
    );
    assert_eq!(
        nodes[0].replica.configuration(),
        Some((0, MemberSet::default())),
        "a refused set changes nothing"
    );
    // One call bootstraps all three: the others take the set from its messages.
    assert_eq!(nodes[0].replica.bootstrap(&set, Duration::from_secs(15)), ResponseCode::Success);
    for node in &nodes {
        expect(node, "the bootstrap", |h| *h == Heard::ConfigurationChanged(None));
        assert_eq!(node.replica.configuration(), Some((1, set.clone())));
    }
    let p = primary(&nodes, None);
    nodes[p].replica.replicate_request(&value(7), 7).unwrap();
    for node in &nodes {
        expect(node, "value 7", |h| matches!(h, Heard::Executed { value: 7, .. }));
    }
    assert_eq!(nodes[1].replica.bootstrap(&set, Duration::ZERO), ResponseCode::AlreadyBootstrapped);
    // A restart comes back bootstrapped (checkpoint 0.codex holds the set) with its state.
    let restarted = (p + 1) % 3;
    drop(nodes.remove(restarted));
    let node = start_new(restarted);
    assert_eq!(node.replica.configuration(), Some((1, set.clone())));
    assert_eq!(node.replica.read_state(|s| s.sum), 7);
    assert_eq!(node.replica.bootstrap(&set, Duration::ZERO), ResponseCode::AlreadyBootstrapped);
    drop(node);
    drop(nodes);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn copy_state_from_replica_copies_a_members_newer_checkpoint() {
    let dir = temp_dir("copy-state");
    let members = members();
    let nodes: Vec<Node> = [("1", Some(5)), ("2", Some(5)), ("3", None)]
        .iter()
        .map(|(id, save)| start(&dir, &members, id, *save))
        .collect();
    let copied = |node: &Node| expect(node, "state copied", |h| matches!(h, Heard::Copied { .. }));
    // No member has a checkpoint yet: nothing to copy.
    nodes[2].replica.copy_state_from_replica(1).unwrap();
    assert_eq!(copied(&nodes[2]), Heard::Copied { decree: 0, path: None, cookie: Some(1) });
    let p = primary(&nodes, None);
    nodes[p].replica.replicate_request(&value(5), 5).unwrap();
    let Heard::Saved(saved) = expect(&nodes[0], "a checkpoint", |h| matches!(h, Heard::Saved(_))) else {
        unreachable!()
    };
    expect(&nodes[1], "a checkpoint", |h| *h == Heard::Saved(saved));
    nodes[2].replica.copy_state_from_replica(2).unwrap();
    let path = dir.join("3").join(format!("{saved}.codex"));
    assert_eq!(copied(&nodes[2]), Heard::Copied { decree: saved, path: Some(path.clone()), cookie: Some(2) });
    // The live state is unchanged; the copy is what the next start loads.
    drop(nodes);
    let node = start(&dir, &members, "3", None);
    expect(&node, "the copy loaded", |h| *h == Heard::Loaded(Some(5)));
    drop(node);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_primary_deposed_before_its_change_is_decided_aborts_it() {
    let (dir, nodes) = cluster("change-aborted");
    let old = primary(&nodes, None);
    let p = &nodes[old];
    expect(p, "NotifyStatus(true)", |h| *h == Heard::Status(true));
    let all = p.replica.configuration().unwrap().1;
    p.replica.pause();
    p.replica.change_configuration(all, 12).unwrap();
    nodes[(old + 1) % 3].replica.attempt_promotion();
    primary(&nodes, Some(old));
    p.replica.resume();
    let heard = expect(p, "the abort", |h| matches!(h, Heard::ChangeAborted { .. } | Heard::Status(false)));
    assert_eq!(
        heard,
        Heard::ChangeAborted { status: ResponseCode::NotPrimary, cookie: 12 },
        "before NotifyStatus(false)"
    );
    expect(p, "NotifyStatus(false)", |h| *h == Heard::Status(false));
    drop(nodes);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Legacy's TestReplicaJoinClusterLater: a replica started for a bootstrap that never came
/// is named by a later configuration. Invited, it copies a member's checkpoint, stops,
/// and once restarted learns its way into the configuration.
#[test]
fn a_replica_that_never_took_the_bootstrap_joins_a_later_configuration() {
    let dir = temp_dir("join-later");
    let four = MemberSet::new((1..=4).map(member).collect(), Default::default()).unwrap();
    let three = MemberSet::new(four.members()[..3].to_vec(), Default::default()).unwrap();
    let nodes: Vec<Node> = three.members().iter().map(|me| start_for_bootstrap(&dir, me)).collect();
    let late = start_for_bootstrap(&dir, &four.members()[3]);
    assert_eq!(nodes[0].replica.bootstrap(&three, Duration::from_secs(15)), ResponseCode::Success);
    let p = primary(&nodes, None);
    nodes[p].replica.replicate_request(&value(7), 7).unwrap();
    for node in &nodes {
        expect(node, "value 7", |h| matches!(h, Heard::Executed { value: 7, .. }));
    }
    assert_eq!(late.replica.configuration(), Some((0, MemberSet::default())), "not bootstrapped");

    nodes[p].replica.change_configuration(four.clone(), 1).unwrap();
    for node in &nodes {
        expect(node, "the change", |h| matches!(h, Heard::ConfigurationChanged(_)));
    }
    // Its members' messages reach the late replica; it asks to join, copies a member's
    // checkpoint (the bootstrap's `0.codex` here) and stops for a restart to load it.
    expect(&late, "the stop after the copy", |h| *h == Heard::ShutDown);
    let deadline = Instant::now() + Duration::from_secs(10);
    while late.replica.installed_checkpoint().is_none() {
        assert!(Instant::now() < deadline, "no checkpoint installed");
        std::thread::sleep(Duration::from_millis(5));
    }
    let app = late.replica.unload().unwrap();
    let replica =
        Replica::initialize_for_bootstrap(&config(&dir), four.members()[3].clone(), Version::V7, app)
            .unwrap();
    let late = Node { replica, heard: late.heard };
    expect(&late, "value 7, learned", |h| matches!(h, Heard::Executed { value: 7, .. }));
    expect(&late, "the change, learned", |h| *h == Heard::ConfigurationChanged(None));
    let p = primary(&nodes, None);
    nodes[p].replica.replicate_request(&value(9), 9).unwrap();
    expect(&late, "value 9", |h| matches!(h, Heard::Executed { value: 9, .. }));
    assert_eq!(late.replica.configuration(), Some((2, four)));
    assert_eq!(late.replica.read_state(|s| s.sum), 16);
    drop((late, nodes));
    let _ = std::fs::remove_dir_all(&dir);
}
