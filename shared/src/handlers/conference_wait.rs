//! `POST /conference/wait`: what a customer hears until an agent joins (the conference waitUrl).

use lambda_http::{Body, Error, Request, Response};

use crate::App;
use crate::twiml::VoiceResponse;

pub const HOLD_MESSAGE: &str =
    "Thank you for calling. Please wait in line for a few seconds. An agent will be with you shortly.";

pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, Error> {
    Ok(super::answer_webhook(app, &req, |_| async {
        // `loop="0"` repeats the music until an agent joins; wait TwiML that runs out of verbs
        // leaves the caller in silence.
        Ok(VoiceResponse::new().say(HOLD_MESSAGE).play(&app.config.hold_music_url, Some(0)))
    })
    .await)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handlers::testing::*;

    #[tokio::test]
    async fn plays_the_hold_message_then_loops_the_music() {
        let t = TestApp::new();
        let params = inbound_call_params(&sid(1));
        let response = handle(&t.app, signed_webhook("/conference/wait", &borrowed(&params))).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(content_type(&response), "text/xml; charset=utf-8");
        assert_eq!(
            body_text(&response),
            format!(
                "{XML_HEAD}<Response><Say>{HOLD_MESSAGE}</Say><Play loop=\"0\">http://com.twilio.music.classical.s3.amazonaws.com/BusyStrings.mp3</Play></Response>"
            )
        );
    }

    #[tokio::test]
    async fn plays_the_configured_music() {
        let config = config_with(&[("HOLD_MUSIC_URL", "https://cdn.example.com/hold.mp3?a=1&b=2")]);
        let t = TestApp::build(config, Default::default(), Default::default());
        let response = handle(&t.app, signed_webhook("/conference/wait", &[("CallSid", &sid(1))])).await.unwrap();
        assert!(
            body_text(&response)
                .ends_with(r#"<Play loop="0">https://cdn.example.com/hold.mp3?a=1&amp;b=2</Play></Response>"#)
        );
    }

    #[tokio::test]
    async fn refuses_an_unsigned_request() {
        let t = TestApp::new();
        let response =
            handle(&t.app, webhook_with_signature("/conference/wait", &[("CallSid", &sid(1))], None)).await.unwrap();
        assert_eq!(response.status(), 403);
        assert_eq!(body_text(&response), "forbidden");
    }
}
