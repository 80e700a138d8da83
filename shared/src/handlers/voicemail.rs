//! A caller leaving a message (`call_flow`'s voicemail part):
//! - `POST /voicemail/{conference_id}/choice`: the key they pressed when offered (`Digits`);
//! - `POST /voicemail/{conference_id}/back`: they left no message after all, back into line;
//! - `POST /voicemail/{conference_id}/done`: the message is recorded, the call ends;
//! - `POST /voicemail/{conference_id}/recording`: Twilio's recording status callback; the
//!   message becomes a ticket.

use lambda_http::{Body, Error, Request, Response};

use crate::error::AppError;
use crate::routes::Route;
use crate::twiml::VoiceResponse;
use crate::{App, call_flow, pipeline};

pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, Error> {
    Ok(pipeline::webhook(app, &req, async |webhook| match &webhook.route {
        Route::VoicemailChoice { conference } => {
            call_flow::voicemail_choice(app, &webhook.links, conference, webhook.param("Digits")).await
        }
        Route::BackInLine { conference } => call_flow::back_in_line(app, &webhook.links, conference).await,
        Route::VoicemailDone { .. } => Ok(call_flow::message_taken()),
        // Twilio ignores what a status callback answers.
        Route::VoicemailRecorded { conference } => {
            if webhook.param("RecordingStatus") == Some("completed") {
                let recording_sid = webhook
                    .param("RecordingSid")
                    .filter(|sid| is_recording_sid(sid))
                    .ok_or(AppError::bad_request("RecordingSid is missing or malformed"))?;
                let duration = webhook.param("RecordingDuration").and_then(|d| d.parse().ok()).unwrap_or_default();
                call_flow::message_recorded(app, conference, recording_sid, duration).await?;
            }
            Ok(VoiceResponse::new())
        }
        _ => Err(AppError::NotFound("no such route".into())),
    })
    .await)
}

/// `RE` and 32 hexadecimal digits.
fn is_recording_sid(sid: &str) -> bool {
    sid.strip_prefix("RE").is_some_and(|hex| hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}
