#!/usr/bin/perl
# Issue 13: one upload, many outputs.  format=mp4,webm,jpg decodes once
# and writes each output; NAME.option applies to that output only; the
# job JSON lists them and each is served at /api/jobs/{id}/output/NAME;
# one failed output fails the job and leaves no output file; DELETE,
# vconv_max_output_size and the store count every output; info and sprite
# (with output/sprite.vtt) as outputs of a list, and the list's
# outputs.zip.  Run in both isolations (the sandboxed child gets every
# output's descriptor).

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp qw(tempdir);
use Test::More;
use VconvNginx;

my $dir = tempdir('vconv-t-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $clip = VconvNginx::make_media($dir, 'mp4', size => '320x240',
                                  duration => 4);
my $wav = VconvNginx::make_media($dir, 'wav');
my $cli = "$VconvNginx::ROOT/build/vconv-cli";

sub files_of {
    my ($ng, $id) = @_;
    return [ sort map { s{.*/}{}r } glob($ng->store . "/$id/*") ];
}

sub file_crc {
    require Compress::Zlib;
    open my $fh, '<:raw', $_[0] or return '';
    local $/;
    return sprintf '%08x', Compress::Zlib::crc32(<$fh> // '');
}

sub psnr {
    my ($a, $b) = @_;
    my $out = `ffmpeg -nostdin -v info -i '$a' -i '$b' -lavfi psnr -f null - 2>&1`;
    return $out =~ /average:(inf|[\d.]+)/ ? ($1 eq 'inf' ? 1000 : $1) : 0;
}

for my $iso (qw(process thread)) {
    my $ng = VconvNginx->new(
        http => "    vconv_isolation $iso;\n",
    )->start;

    # --- three outputs from one upload -------------------------------------
    my $r = $ng->post_file('/api/jobs?format=mp4,webm,jpg&jpg.start=3'
                           . '&webm.height=120&duration=3', $clip,
                           name => 'clip.mp4');
    is($r->{status}, 202, "$iso: format=mp4,webm,jpg taken")
        or diag($r->{body});
    my $id = $r->{json}{id};
    my $job = $ng->wait_job($id, 120) // {};
    is($job->{status}, 'done', "$iso: ... done") or diag(explain($job));
    is_deeply([ map { $_->{name} } @{ $job->{outputs} // [] } ],
              [qw(mp4 webm jpg)], "$iso: outputs[] in list order");
    is($job->{output}{format}, 'mp4', "$iso: output is the first");
    is($job->{outputs}[0]{bytes}, $job->{output}{bytes},
       "$iso: ... with its bytes");
    is_deeply(files_of($ng, $id),
              [qw(job.json output output.jpg output.webm zip.idx)],
              "$iso: files output, output.NAME in the job folder");

    my %want = (
        mp4  => { type => 'video/mp4', vcodec => 'h264', h => 240, dur => 3 },
        webm => { type => 'video/webm', vcodec => 'vp9', h => 120, dur => 3 },
        jpg  => { type => 'image/jpeg', vcodec => 'mjpeg', h => 240 },
    );
    my %file;
    for my $o (@{ $job->{outputs} // [] }) {
        my $w = $want{ $o->{name} };
        like($o->{url}, qr{/api/jobs/\Q$id\E/output/$o->{name}$},
             "$iso: $o->{name}: url");
        my $f = "$dir/$iso.$o->{name}";
        my $g = $ng->get("/api/jobs/$id/output/$o->{name}", output => $f);
        is($g->{status}, 200, "$iso: $o->{name}: served");
        is($g->{headers}{'content-type'}, $w->{type},
           "$iso: $o->{name}: Content-Type");
        is(-s $f, $o->{bytes}, "$iso: $o->{name}: bytes as in the JSON");
        my $p = VconvNginx::probe($f, count_frames => 1) // {};
        is($p->{video}{codec_name}, $w->{vcodec}, "$iso: $o->{name}: codec");
        is($p->{video}{height}, $w->{h},
           "$iso: $o->{name}: height (webm.height for webm only)");
        if ($w->{dur}) {
            cmp_ok(abs($p->{duration} - $w->{dur}), '<', 0.15,
                   "$iso: $o->{name}: duration=3 applies to it");
            is($p->{video}{nb_read_frames}, 75,
               "$iso: $o->{name}: 75 frames at 25 fps");
            ok($p->{audio}, "$iso: $o->{name}: has sound");
        }
        $file{ $o->{name} } = $f;
    }

    # the same as the single-format jobs, picture for picture
    if ($iso eq 'process') {
        system($cli, $clip, "$dir/one.jpg", 'format=jpg', 'start=3') == 0
            or diag('vconv-cli failed');
        cmp_ok(psnr($file{jpg}, "$dir/one.jpg"), '>=', 60,
               'jpg.start=3: the picture the single jpg job makes at 3 s');
        system($cli, $clip, "$dir/zero.jpg", 'format=jpg', 'start=0') == 0
            or diag('vconv-cli failed');
        cmp_ok(psnr($file{jpg}, "$dir/zero.jpg"), '<', 40,
               '... not the one at 0 s');
    }

    my $g = $ng->get("/api/jobs/$id/output");
    is($g->{headers}{'content-type'}, 'video/mp4', "$iso: /output: the first");
    VconvNginx::is_api_error($ng->get("/api/jobs/$id/output/gif"), 404,
                             undef, "$iso: an output not asked -> 404");
    VconvNginx::is_api_error($ng->get("/api/jobs/$id/output/..%2finput"),
                             404, undef, "$iso: no path through the name");

    # --- DELETE removes every output ---------------------------------------
    is($ng->delete($id)->{status}, 204, "$iso: DELETE");
    ok(!-e $ng->store . "/$id", "$iso: ... the folder and all outputs gone");

    # --- a failed output fails the job, no output is left ------------------
    $r = $ng->post_file('/api/jobs?format=mp3,gif', $wav, name => 'tone.wav');
    is($r->{status}, 202, "$iso: mp3,gif of an audio-only input taken");
    $job = $ng->wait_job($r->{json}{id}, 60) // {};
    is($job->{status}, 'failed', "$iso: ... failed");
    is($job->{error}{code}, 'no_video_stream', "$iso: ... with gif's error");
    my @left = grep { /^output/ } @{ files_of($ng, $r->{json}{id}) };
    is("@left", '', "$iso: ... and no output file left");
    VconvNginx::is_api_error($ng->get("/api/jobs/$r->{json}{id}/output/mp3"),
                             409, 'not_ready', "$iso: ... mp3 not served");

    # an output that fails late (its encoder), after others wrote data
    $r = $ng->post_file('/api/jobs?format=mp4,wav&wav.start=30', $clip,
                        name => 'clip.mp4');
    $job = $ng->wait_job($r->{json}{id}, 60) // {};
    is($job->{status}, 'failed', "$iso: wav.start past the end fails the job");
    is($job->{error}{code}, 'start_beyond_end', "$iso: ... with wav's error");
    @left = grep { /^output/ } @{ files_of($ng, $r->{json}{id}) };
    is("@left", '', "$iso: ... the mp4 written meanwhile is gone too");

    # --- bad lists: 400 ---------------------------------------------------
    for my $c (['format=mp4,mp4', 'duplicate_option'],
               ['format=mp4,webm&target_size=100k', 'conflicting_options'],
               ['format=mp4,webm&vcodec=copy', undef],
               ['format=mp4,webm&gif.start=1', 'invalid_value'],
               ['format=mp4,webm&webm.vcodec=h264', 'codec_not_allowed'],
               ['format=mp4,nope', 'unknown_format'],
               ['format=mp4,webm&mp4.bogus=1', 'unknown_option'],
               ['format=mp4,webm,jpg,png,gif,webp,mp3,m4a,wav', 'out_of_range'])
    {
        $r = $ng->post_file("/api/jobs?$c->[0]", $clip, name => 'clip.mp4');
        VconvNginx::is_api_error($r, 400, $c->[1], "$iso: $c->[0] -> 400");
    }

    # single formats stay as they were: no list in the record
    $r = $ng->post_file('/api/jobs?format=mp3&wait=1', $clip,
                        name => 'clip.mp4');
    is($r->{status}, 200, "$iso: format=mp3&wait=1 answers the output");
    is($r->{headers}{'content-type'}, 'audio/mpeg', '... as before');

    # wait=1 with a list answers the first output
    $r = $ng->post_file('/api/jobs?format=webm,jpg&wait=1', $clip,
                        name => 'clip.mp4');
    is($r->{status}, 200, "$iso: a list with wait=1");
    is($r->{headers}{'content-type'}, 'video/webm', '... answers the first');


    # --- info and sprite as outputs of a list (one decode feeds the
    # sprite; info comes from the opened input; sprite.* go to the sprite
    # as they are; the VTT is served as output/sprite.vtt) ---------------
    $r = $ng->post_file('/api/jobs?format=mp4,sprite,info&height=120'
                        . '&sprite.columns=3&sprite.interval=1', $clip,
                        name => 'clip.mp4');
    is($r->{status}, 202, "$iso: format=mp4,sprite,info taken")
        or diag($r->{body});
    $id = $r->{json}{id};
    $job = $ng->wait_job($id, 120) // {};
    is($job->{status}, 'done', "$iso: ... done") or diag(explain($job));
    is_deeply([ map { $_->{name} } @{ $job->{outputs} // [] } ],
              [qw(mp4 sprite info)], "$iso: ... outputs[] in list order");
    is_deeply(files_of($ng, $id),
              [qw(job.json output output.info output.sprite
                  output.sprite.vtt zip.idx)],
              "$iso: ... output, output.sprite (+ .vtt), output.info");
    my %o = map { $_->{name} => $_ } @{ $job->{outputs} // [] };

    my $f = "$dir/$iso.l.mp4";
    $ng->get("/api/jobs/$id/output/mp4", output => $f);
    my $p = VconvNginx::probe($f, count_frames => 1) // {};
    is($p->{video}{codec_name}, 'h264', "$iso: mp4: h264");
    is($p->{video}{height}, 120, "$iso: mp4: height=120 applies to it");
    cmp_ok(abs(($p->{duration} // 0) - 4), '<', 0.15, "$iso: mp4: 4 s");
    is($p->{video}{nb_read_frames}, 100, "$iso: mp4: 100 frames");
    ok($p->{audio}, "$iso: mp4: has sound");

    my $sp = "$dir/$iso.l.sprite.jpg";
    $g = $ng->get("/api/jobs/$id/output/sprite", output => $sp);
    is($g->{status}, 200, "$iso: sprite: served");
    is($g->{headers}{'content-type'}, 'image/jpeg', "$iso: sprite: jpeg");
    is(-s $sp, $o{sprite}{bytes}, "$iso: sprite: bytes as in the JSON");
    $p = VconvNginx::probe($sp) // {};
    my ($sw, $sh) = ($p->{video}{width} // 0, $p->{video}{height} // 0);
    $g = $ng->get("/api/jobs/$id/output/sprite.vtt");
    is($g->{status}, 200, "$iso: sprite.vtt: served");
    like($g->{headers}{'content-type'} // '', qr{^text/vtt},
         "$iso: sprite.vtt: text/vtt");
    my $vtt = $g->{body} // '';
    my @cues;
    while ($vtt =~ /^(\d\d):(\d\d):(\d\d\.\d{3}) --> (\d\d):(\d\d):(\d\d\.\d{3})\n(.*)#xywh=(\d+),(\d+),(\d+),(\d+)$/mg) {
        push @cues, { from => $1 * 3600 + $2 * 60 + $3,
                      to => $4 * 3600 + $5 * 60 + $6, url => $7,
                      x => $8, y => $9, w => $10, h => $11 };
    }
    like($vtt, qr/^WEBVTT\n/, "$iso: sprite.vtt: a WebVTT");
    is(scalar @cues, 4, "$iso: sprite.vtt: 4 cues, 4 s every 1 s");
    my $bad = 0;
    for my $i (0 .. $#cues) {
        my $c = $cues[$i];
        $bad++, diag("cue $i: " . explain($c))
            unless abs($c->{from} - $i) < 0.001
                && abs($c->{to} - ($i + 1)) < 0.001
                && $c->{url} eq 'sprite'
                && $c->{x} == ($i % 3) * 160 && $c->{y} == int($i / 3) * 120
                && $c->{w} == 160 && $c->{h} == 120;
    }
    is($bad, 0, "$iso: sprite.vtt: each cue its second and its tile "
                . "(sprite.columns=3, sprite.interval=1)");
    cmp_ok(abs((@cues ? $cues[-1]{to} : 0) - 4), '<', 0.05,
           "$iso: sprite.vtt: the last cue ends at the input's end");
    is("${sw}x$sh", (3 * 160) . 'x' . (2 * 120),
       "$iso: sprite: the grid is 3 tiles wide and 2 rows high");
    if ($iso eq 'process') {
        system("'$cli' '$clip' '$dir/one.sprite.jpg' format=sprite "
               . 'sprite.columns=3 sprite.interval=1 >/dev/null') == 0
            or diag('vconv-cli failed');
        cmp_ok(psnr($sp, "$dir/one.sprite.jpg"), '>=', 60,
               'sprite in a list: the single sprite job\'s picture');
    }

    $g = $ng->get("/api/jobs/$id/output/info");
    is($g->{status}, 200, "$iso: info: served");
    like($g->{headers}{'content-type'} // '', qr{^application/json},
         "$iso: info: application/json");
    is(length($g->{body} // ''), $o{info}{bytes},
       "$iso: info: bytes as in the JSON");
    my $info = eval { VconvNginx->json->decode($g->{body}) } // {};
    my $want = VconvNginx->json->decode(
        scalar `ffprobe -v error -show_format -show_streams -of json '$clip'`);
    is($info->{format}{name}, $want->{format}{format_name},
       "$iso: info: container as ffprobe says");
    cmp_ok(abs(($info->{format}{duration} // 0) - $want->{format}{duration}),
           '<', 0.001, "$iso: info: duration as ffprobe says");
    is($info->{format}{size}, -s $clip, "$iso: info: the input's size");
    is(scalar @{ $info->{streams} // [] }, scalar @{ $want->{streams} },
       "$iso: info: every stream");
    for my $i (0 .. $#{ $want->{streams} }) {
        my ($gs, $ws) = ($info->{streams}[$i] // {}, $want->{streams}[$i]);
        my @k = $ws->{codec_type} eq 'video'
                ? qw(codec_type codec_name width height pix_fmt avg_frame_rate)
                : qw(codec_type codec_name sample_rate channels);
        is(join(',', map { $gs->{$_} // 'undef' } @k),
           join(',', map { $ws->{$_} // 'undef' } @k),
           "$iso: info: stream $i (@k) as ffprobe says");
    }

    # the zip of the list: every output and the VTT, right CRCs and sizes
    my $zip = "$dir/$iso.l.zip";
    $g = $ng->get("/api/jobs/$id/outputs.zip", output => $zip);
    is($g->{status}, 200, "$iso: outputs.zip of the list");
    my $py = `python3 -c '
import sys, zipfile, zlib
z = zipfile.ZipFile(sys.argv[1])
print(z.testzip())
for i in z.infolist():
    print(i.filename, i.file_size, i.compress_type,
          "%08x" % (zlib.crc32(z.read(i)) & 0xffffffff))
' '$zip' 2>&1`;
    my @zl = split /\n/, $py;
    is(shift(@zl) // '', 'None', "$iso: ... testzip(): every CRC right")
        or diag($py);
    my $folder = $ng->store . "/$id";
    my %zf = ('clip.mp4' => 'output', 'clip.sprite.jpg' => 'output.sprite',
              'clip.sprite.vtt' => 'output.sprite.vtt',
              'clip.info.json' => 'output.info');
    is_deeply([ sort @zl ],
              [ sort map { "$_ " . (-s "$folder/$zf{$_}") . " 0 "
                           . file_crc("$folder/$zf{$_}") } keys %zf ],
              "$iso: ... mp4, sprite, its VTT and info: names, sizes, CRCs")
        or diag($py);
    is($ng->delete($id)->{status}, 204, "$iso: DELETE of the list");
    ok(!-e $folder, "$iso: ... the VTT and all outputs gone");

    # the sprite first: it is "output", /output/sprite and the VTT too
    $r = $ng->post_file('/api/jobs?format=sprite,mp4&mp4.height=96', $clip,
                        name => 'clip.mp4');
    $job = $ng->wait_job($r->{json}{id}, 60) // {};
    is($job->{status}, 'done', "$iso: sprite,mp4 done");
    $g = $ng->get("/api/jobs/$r->{json}{id}/output/sprite");
    is($g->{headers}{'content-type'}, 'image/jpeg',
       "$iso: ... /output/sprite is the first output");
    is(length($g->{body} // ''), $job->{output}{bytes}, "$iso: ... its bytes");
    like($ng->get("/api/jobs/$r->{json}{id}/output/sprite.vtt")->{body} // '',
         qr/^WEBVTT\n(?:\n[\d:.]+ --> [\d:.]+\nsprite#xywh=\S+\n){4}$/,
         "$iso: ... its VTT: 4 cues of the default interval");
    $p = VconvNginx::probe(do {
        my $m = "$dir/$iso.sm.mp4";
        $ng->get("/api/jobs/$r->{json}{id}/output/mp4", output => $m);
        $m }) // {};
    is($p->{video}{height}, 96, "$iso: ... and the mp4 its mp4.height");

    # sprite.* without a sprite, a bad one with it: 400
    VconvNginx::is_api_error(
        $ng->post_file('/api/jobs?format=mp4,webm&sprite.columns=3', $clip,
                       name => 'clip.mp4'),
        400, 'invalid_value', "$iso: sprite.columns and no sprite -> 400");
    VconvNginx::is_api_error(
        $ng->post_file('/api/jobs?format=mp4,sprite&sprite.columns=99',
                       $clip, name => 'clip.mp4'),
        400, 'out_of_range', "$iso: sprite.columns=99 in a list -> 400");

    # a list with info and sprite that fails late leaves none of them
    $r = $ng->post_file('/api/jobs?format=sprite,info,wav&wav.start=30',
                        $clip, name => 'clip.mp4');
    $job = $ng->wait_job($r->{json}{id}, 60) // {};
    is($job->{status}, 'failed', "$iso: sprite,info,wav with wav past the end");
    is($job->{error}{code}, 'start_beyond_end', "$iso: ... wav's error");
    @left = grep { /^output/ } @{ files_of($ng, $r->{json}{id}) };
    is("@left", '', "$iso: ... no sprite, VTT or info left");
    VconvNginx::is_api_error(
        $ng->get("/api/jobs/$r->{json}{id}/output/sprite.vtt"), 409,
        'not_ready', "$iso: ... sprite.vtt not served");

    # a sprite of an input with no picture fails the list
    $r = $ng->post_file('/api/jobs?format=mp3,sprite', $wav,
                        name => 'tone.wav');
    $job = $ng->wait_job($r->{json}{id}, 60) // {};
    is($job->{error}{code}, 'no_video_stream',
       "$iso: mp3,sprite of sound alone: the sprite's error");
    @left = grep { /^output/ } @{ files_of($ng, $r->{json}{id}) };
    is("@left", '', "$iso: ... nothing left");

    $ng->assert_clean_log;
    $ng->stop;
}

# --- vconv_max_output_size over all outputs; the store counts them -------
{
    my $ng = VconvNginx->new(http => "    vconv_max_output_size 250k;\n",
                             store_opts => 'max_size=500k ttl=1h')->start;
    # each alone is under 250k, together they are not
    my $r = $ng->post_file('/api/jobs?format=mp4&wait=1', $clip,
                           name => 'clip.mp4');
    my $one = length($r->{body} // '');
    cmp_ok($one, '<', 250 * 1024, 'mp4 alone is under 250k');
    cmp_ok($one, '>', 125 * 1024, '... and over half of it');
    $r = $ng->post_file('/api/jobs?format=mp4,mov', $clip,
                        name => 'clip.mp4');
    my $job = $ng->wait_job($r->{json}{id}, 60) // {};
    is($job->{status}, 'failed', 'mp4,mov over 250k together fails');
    is($job->{error}{code}, 'output_size_limit', '... output_size_limit');
    my @left = grep { /^output/ } @{ files_of($ng, $r->{json}{id}) };
    is("@left", '', '... no output left');

    # the sprite's JPEG and info count too: over the bound only with the
    # big tiles, found when the sprite is made at the end of the input
    $r = $ng->post_file('/api/jobs?format=mp4,sprite,info&sprite.width=640'
                        . '&sprite.interval=0.5', $clip, name => 'clip.mp4');
    $job = $ng->wait_job($r->{json}{id}, 60) // {};
    is($job->{status}, 'failed', 'mp4,sprite,info over 250k with the sprite')
        or diag(explain($job));
    is($job->{error}{code}, 'output_size_limit', '... output_size_limit');
    @left = grep { /^output/ } @{ files_of($ng, $r->{json}{id}) };
    is("@left", '', '... no mp4, sprite, VTT or info left');
    $r = $ng->post_file('/api/jobs?format=mp4,sprite,info', $clip,
                        name => 'clip.mp4');
    $job = $ng->wait_job($r->{json}{id}, 60) // {};
    is($job->{status}, 'done', '... with small tiles the list fits');
    $ng->stop;

    # the store quota counts every output: with a quota between "the clip
    # and the first output" and "the clip and both outputs", the clip
    # again is refused only if the second output counts (after a restart:
    # the store is scanned from the folders)
    $ng = VconvNginx->new(store_opts => 'ttl=1h')->start;
    $r = $ng->post_file('/api/jobs?format=mp4,mov', $clip,
                        name => 'clip.mp4');
    $job = $ng->wait_job($r->{json}{id}, 60) // {};
    is($job->{status}, 'done', 'mp4,mov done');
    my ($b1, $b2) = map { $_->{bytes} // 0 } @{ $job->{outputs} // [] };
    cmp_ok($b2, '>', 10000, '... the second output has bytes');
    my $size = -s $clip;
    my $quota = int($size + $b1 + $b2 / 2 + 4096);
    diag("clip $size, outputs $b1 + $b2, quota $quota");
    $ng->stop;
    $ng->{store_opts} = "max_size=$quota ttl=1h";
    $ng->start;
    $r = $ng->post_file('/api/jobs?format=mp4', $clip, name => 'clip.mp4');
    VconvNginx::is_api_error($r, 507, 'store_full',
                             'the next upload is over the quota -> 507');
    $ng->stop;

    $ng = VconvNginx->new()->start;
    $r = $ng->post_file('/api/jobs?format=webm,jpg&height=96', $clip,
                        name => 'clip.mp4');
    $job = $ng->wait_job($r->{json}{id}, 60) // {};
    is($job->{status}, 'done', 'a small list is done');
    $ng->assert_clean_log;
    $ng->stop;

    # after a restart the store is scanned again: job.json keeps the list
    $ng->start;
    $job = $ng->get("/api/jobs/$r->{json}{id}")->{json} // {};
    is_deeply([ map { "$_->{name}:$_->{bytes}" } @{ $job->{outputs} // [] } ],
              [ map { "$_:" . -s $ng->store . "/$r->{json}{id}/"
                      . ($_ eq 'webm' ? 'output' : "output.$_") }
                qw(webm jpg) ],
              'after a restart the outputs come back from job.json');
    is($ng->get("/api/jobs/$r->{json}{id}/output/jpg")->{status}, 200,
       '... and are served');
    $ng->stop;
}

done_testing();
