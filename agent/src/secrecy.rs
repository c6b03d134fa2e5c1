//! Who may read a config file once it holds secrets (S3 keys): root, the file's owner and the
//! service's own user or group, nobody else. A decision over the file's current mode and group,
//! kept pure so that every case is a table row.

use restate_fleet_proto::agent::AccessChange;

use crate::host::Account;

/// Owner, group and mode bits of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

impl Access {
    /// Owned by root:root.
    pub fn root(mode: u32) -> Self {
        Access {
            mode,
            uid: 0,
            gid: 0,
        }
    }
}

/// The access a file that now holds secrets must have: others lose every bit; when the service
/// runs as a dedicated user that does not own the file, the file's group becomes that user's group
/// with the read bit (the server must still read its config); nothing else is widened.
pub fn for_secrets(current: Access, service: Option<Account>) -> Access {
    let mut access = Access {
        mode: current.mode & !0o007,
        ..current
    };
    if let Some(service) = service
        && service.uid != current.uid
    {
        access.gid = service.gid;
        // Group write or execute stays only where the file's group was already the service's.
        let kept = if current.gid == service.gid {
            access.mode & 0o070
        } else {
            0
        };
        access.mode = (access.mode & !0o070) | kept | 0o040;
    }
    access
}

/// What changes between `before` and `after`, for plan's diff header and the recap.
pub fn change(before: Access, after: Access) -> Option<AccessChange> {
    (before != after).then_some(AccessChange {
        mode_before: before.mode,
        mode_after: after.mode,
        gid_before: before.gid,
        gid_after: after.gid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: u32 = 0;
    const RESTATE: Account = Account { uid: 998, gid: 997 };

    fn access(mode: u32, uid: u32, gid: u32) -> Access {
        Access { mode, uid, gid }
    }

    #[test]
    fn others_lose_every_bit_and_the_service_keeps_reading() {
        #[rustfmt::skip]
        let cases = [
            // (mode, uid, gid), service user, expected (mode, gid)
            ((0o644, ROOT, ROOT), None, (0o640, ROOT)),
            ((0o600, ROOT, ROOT), None, (0o600, ROOT)),
            ((0o640, 4321, 4321), None, (0o640, 4321)),       // the operator's group stays
            ((0o666, ROOT, ROOT), None, (0o660, ROOT)),
            ((0o644, ROOT, ROOT), Some(RESTATE), (0o640, 997)), // read through others -> group
            ((0o640, ROOT, 997), Some(RESTATE), (0o640, 997)),
            ((0o660, ROOT, 997), Some(RESTATE), (0o660, 997)),  // its own group keeps write
            ((0o660, ROOT, 4321), Some(RESTATE), (0o640, 997)), // another group's write goes
            ((0o600, 998, 998), Some(RESTATE), (0o600, 998)),   // the service owns the file
            ((0o4755, ROOT, ROOT), None, (0o4750, ROOT)),
        ];
        for ((mode, uid, gid), service, (want_mode, want_gid)) in cases {
            let got = for_secrets(access(mode, uid, gid), service);
            assert_eq!(
                (got.mode, got.uid, got.gid),
                (want_mode, uid, want_gid),
                "{mode:o} {uid}:{gid} with service {service:?}"
            );
            assert_eq!(got.mode & 0o007, 0, "others never read a file with secrets");
        }
    }

    #[test]
    fn a_change_is_reported_only_when_there_is_one() {
        let before = access(0o644, ROOT, ROOT);
        assert_eq!(change(before, before), None);
        let after = for_secrets(before, None);
        let reported = change(before, after).expect("a change");
        assert_eq!((reported.mode_before, reported.mode_after), (0o644, 0o640));
    }
}
