//! The media transport against the real telephony rig (filled in by the media integration).
