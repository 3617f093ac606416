#!/usr/bin/perl
# Issue 23 through the real server: what the ffmpeg CLI converts, the
# module converts; an input's own faults are 4xx naming the property,
# never 500.  Media made here by tools/vconv_samples.sh (the ffmpeg CLI).
#
# - a 100-channel WAV: 422 unsupported_audio_layout whose message names
#   100 and the real bound, in the upload's own answer; a 64-channel WAV
#   (the bound) converts to every audio format or is refused with a 4xx
#   naming the property, never a 5xx
# - an MKV whose TTA packets are damaged up to the last: mp4 is done,
#   lasts 4.0 s like the CLI's, and the job JSON counts the damaged
#   packets (warnings.damaged_packets > 0); a clean file counts 0
# - one file per format issue 23 added to the default allow-list that
#   the CLI can write converts, to mp4/mp3/jpg, as long as the CLI's
# - an ALAC CAF (packet table after the data) read while it uploads
# - a stereo WAV to wav: the output's channel layout is "stereo", not
#   "unknown"; a mono one "mono"; the samples are unchanged

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp qw(tempdir);
use Test::More;
use VconvNginx;
use VconvMedia ();

my $dir = tempdir('vconv-conf-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $J = VconvNginx->json;

my %made;
for my $line (`$FindBin::Bin/../tools/vconv_samples.sh $dir --cases`) {
    my ($f, $demuxer) = split ' ', $line;
    $made{(split m{/}, $f)[-1]} = $demuxer;
}
is($?, 0, 'tools/vconv_samples.sh made every sample ('
          . scalar(keys %made) . ' files)');

sub code_of {
    my ($r) = @_;
    return ref $r->{json} eq 'HASH' && ref $r->{json}{error} eq 'HASH'
           ? $r->{json}{error}{code} // '' : '';
}

sub dur { VconvMedia::probe($_[0])->{format}{duration} // -1 }

my $ng = VconvNginx->new(workers => 1)->start;

# ------------------------------------------------ channel counts
# no wait=1: the probe sees the count while the body arrives, so the
# upload's own answer is the refusal, not a 202 and a failed job later
my $r = $ng->post_file('/api/jobs?format=mp3', "$dir/ch100.wav",
                       name => 'ch100.wav');
is($r->{status}, 422, '100-channel WAV: the upload is answered 422')
    or diag(substr($r->{body}, 0, 300));
is(code_of($r), 'unsupported_audio_layout', '... unsupported_audio_layout');
like(($r->{json}{error} // {})->{message} // '',
     qr/the input has 100 audio channels; at most 64 can be converted/,
     '... the message names the count and the real bound');
my $left;
VconvNginx::poll(10, sub { $left = $ng->store_entries; !@$left });
is_deeply($left, [], '... and nothing of it is left in the store');

for my $fmt (qw(mp3 m4a opus ogg flac wav)) {
    $r = $ng->post_file("/api/jobs?format=$fmt&wait=1", "$dir/ch64.wav",
                        name => 'ch64.wav', max_time => 60);
    if ($r->{status} == 200) {
        my $out = "$dir/ch64.$fmt";
        open my $fh, '>:raw', $out or die $!;
        print $fh $r->{body};
        close $fh;
        my $a = VconvMedia::audio_stream(VconvMedia::probe($out)) // {};
        ok(($a->{channels} // 0) >= 1 && abs(dur($out) - 1) < 0.2,
           "64-channel WAV -> $fmt: $a->{channels} channels, "
           . dur($out) . ' s');
    } else {
        ok($r->{status} =~ /^4\d\d$/ && code_of($r) ne ''
           && code_of($r) ne 'internal_error',
           "64-channel WAV -> $fmt: a 4xx naming the cause "
           . "($r->{status} " . code_of($r) . ')');
    }
}
$r = $ng->post_file('/api/jobs?format=mp3&wait=1', "$dir/ch64.wav",
                    name => 'ch64.wav', max_time => 60);
is($r->{status}, 200, '64-channel WAV -> mp3 converts (mixed down)');

# ------------------------------------------------ damaged at the end
$r = $ng->post_file('/api/jobs?format=mp4', "$dir/noisy-tta.mkv",
                    name => 'noisy.mkv');
is($r->{status}, 202, 'TTA-noise MKV -> mp4 accepted');
my $job = $ng->wait_job($r->{json}{id}, 120) // {};
is($job->{status}, 'done', 'TTA-noise MKV -> mp4 is done, not '
                           . 'decode_error at the flush')
    or diag($J->encode($job));
cmp_ok(($job->{warnings} // {})->{damaged_packets} // 0, '>', 0,
       'the job JSON counts the damaged packets ('
       . (($job->{warnings} // {})->{damaged_packets} // 'none') . ')');
if (($job->{status} // '') eq 'done') {
    $ng->download($job->{id}, "$dir/noisy.mp4");
    my $cli = "$dir/noisy-cli.mp4";
    system('ffmpeg', '-nostdin', '-v', 'quiet', '-y', '-i',
           "$dir/noisy-tta.mkv", $cli);
    my $p = VconvMedia::probe("$dir/noisy.mp4");
    my $v = VconvMedia::video_stream($p) // {};
    is($v->{codec_name}, 'h264', '... an H.264 video track');
    ok(abs(dur("$dir/noisy.mp4") - 4.0) <= 0.15,
       '... lasting ~4.0 s (' . dur("$dir/noisy.mp4") . ' s; the CLI '
       . dur($cli) . ' s)');
    is(VconvMedia::frame_count("$dir/noisy.mp4"), 40,
       '... every one of the 40 frames');
}

# a clean file: nothing counted
$r = $ng->post_file('/api/jobs?format=mp3', "$dir/s.wv", name => 's.wv');
$job = $ng->wait_job($r->{json}{id}, 60) // {};
is(($job->{warnings} // {})->{damaged_packets}, 0,
   'a clean file: warnings.damaged_packets is 0');

# ------------------------------------------------ the wider allow-list
my %kind = (ivf => 'mp4', mxf => 'mp4', dv => 'mp4', apng => 'mp4',
            tif => 'jpg', j2k => 'jpg', dpx => 'jpg', exr => 'jpg',
            ppm => 'jpg', pgm => 'jpg', pbm => 'jpg');
my @new = sort grep { /^s\./ } keys %made;
cmp_ok(scalar @new, '>=', 21, scalar(@new) . ' newly allowed formats');
for my $name (@new) {
    my ($ext) = $name =~ /\.(\w+)$/;
    my $fmt = $kind{$ext} // 'mp3';
    my $in = "$dir/$name";
    $r = $ng->post_file("/api/jobs?format=$fmt&wait=1", $in, name => $name,
                        max_time => 60);
    is($r->{status}, 200, "$name ($made{$name}) -> $fmt converts")
        or do { diag(substr($r->{body}, 0, 300)); next };
    my $out = "$dir/out-$ext.$fmt";
    open my $fh, '>:raw', $out or die $!;
    print $fh $r->{body};
    close $fh;
    my $p = VconvMedia::probe($out) // {};
    if ($fmt eq 'jpg') {
        my $v = VconvMedia::video_stream($p) // {};
        my $iv = VconvMedia::video_stream(VconvMedia::probe($in)) // {};
        ok(($v->{codec_name} // '') eq 'mjpeg'
           && ($v->{width} // 0) == ($iv->{width} // -1),
           "... a JPEG of the input's width ($v->{width})");
    } else {
        my $want = $fmt eq 'mp3' ? 'mp3' : 'h264';
        my $s = $fmt eq 'mp3' ? VconvMedia::audio_stream($p)
                              : VconvMedia::video_stream($p);
        my $cli = "$dir/cli-$ext.$fmt";
        system('ffmpeg', '-nostdin', '-v', 'quiet', '-y', '-i', $in,
               ($fmt eq 'mp3' ? '-vn' : ()), $cli);
        my ($a, $b) = (dur($out), dur($cli));
        ok(($s // {})->{codec_name} && $s->{codec_name} eq $want
           && (abs($a - $b) <= 0.5 || abs($a - $b) <= 0.1 * $b),
           "... $want, $a s (the CLI: $b s)");
    }
}

# a CAF whose packet table follows its data (ALAC), uploaded slowly so
# that it is read while it grows: the demuxer must seek to the table
{
    my $caf = "$dir/slow.caf";
    system('ffmpeg', '-nostdin', '-v', 'error', '-y', '-f', 'lavfi', '-i',
           'anoisesrc=d=3:sample_rate=44100:amplitude=0.3', '-c:a', 'alac',
           $caf);
    $r = $ng->post_file('/api/jobs?format=mp3&wait=1', $caf,
                        name => 'slow.caf', limit_rate => '200k',
                        max_time => 60);
    is($r->{status}, 200, 'ALAC CAF read while it uploads -> mp3')
        or diag(substr($r->{body}, 0, 300));
}

# ------------------------------------------------ wav layouts
for my $case (['stereo.wav', 'stereo'], ['s.w64', 'mono']) {
    my ($name, $want) = @$case;
    $r = $ng->post_file('/api/jobs?format=wav&wait=1', "$dir/$name",
                        name => $name, max_time => 60);
    is($r->{status}, 200, "$name -> wav");
    my $out = "$dir/layout-$name.wav";
    open my $fh, '>:raw', $out or die $!;
    print $fh $r->{body};
    close $fh;
    my $a = VconvMedia::audio_stream(VconvMedia::probe($out)) // {};
    is($a->{channel_layout}, $want, "... channel layout $want, not unknown");
    my $pcm = sub {
        my $f = shift;
        scalar `ffmpeg -nostdin -v error -i '$f' -f s16le -ac 1 -ar 8000 -`;
    };
    ok($pcm->($out) eq $pcm->("$dir/$name"),
       '... the samples are those of the input') if $name eq 'stereo.wav';
}

# ------------------------------------------------ ogg from 8 kHz
# libvorbis has no 160k mean rate at 8 kHz: the default encodes by quality
{
    my $in = "$dir/voice8k.wav";
    system('ffmpeg', '-nostdin', '-v', 'error', '-y', '-f', 'lavfi', '-i',
           'sine=frequency=300:sample_rate=8000:duration=3', '-ac', '1', $in);
    $r = $ng->post_file('/api/jobs?format=ogg&wait=1', $in,
                        name => 'voice8k.wav', max_time => 60);
    is($r->{status}, 200, 'an 8 kHz mono WAV -> ogg (vorbis)')
        or diag(substr($r->{body}, 0, 300));
    my $out = "$dir/voice8k.ogg";
    open my $fh, '>:raw', $out or die $!;
    print $fh $r->{body};
    close $fh;
    my $a = VconvMedia::audio_stream(VconvMedia::probe($out)) // {};
    is($a->{codec_name}, 'vorbis', '... vorbis');
    ok(abs(dur($out) - 3) < 0.1, '... 3 s') or diag(dur($out));
}

$ng->assert_clean_log;
unlike($ng->error_log, qr/exited on signal|AddressSanitizer/,
       'no worker died');
$ng->stop;

done_testing;
